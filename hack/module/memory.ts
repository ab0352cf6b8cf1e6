// Preloaded (NODE_OPTIONS="--import ./hack/module/memory.ts") into a module run by hack/module.sh
// with ENTANGLE_MEMORY_FILE set: every second, the module's process.memoryUsage() and V8 heap
// spaces as JSON in that file (replaced), so that hack/bench-controller.ts can say what its RSS
// is made of: live JS heap, heap V8 keeps but does not use, buffers, or the rest (code, stacks,
// the allocator's free pages).
import { writeFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";

const path = process.env.ENTANGLE_MEMORY_FILE;
// NODE_OPTIONS reaches every node process hack/module.sh starts: the module's own only
if (path && /(pepr\.ts|module\.mjs)$/.test(process.argv[1] ?? "")) {
  setInterval(() => {
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
    writeFileSync(path, JSON.stringify({ ...process.memoryUsage(), spaces }));
  }, 1000).unref();
}
