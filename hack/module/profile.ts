// Preloaded (NODE_OPTIONS="--import ./hack/module/profile.ts") into a module run by
// hack/module.sh with ENTANGLE_PROFILE_DIR set: a CPU profile runs from the start; each SIGUSR2
// writes the profile so far (<dir>/<n>.cpuprofile, then profiling restarts) and a heap snapshot
// (<dir>/<n>.heapsnapshot), then <dir>/<n>.done. For hack/bench-controller.ts --profile.
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
import { writeHeapSnapshot } from "node:v8";
import { join } from "node:path";

const dir = process.env.ENTANGLE_PROFILE_DIR;
if (dir && /(pepr\.ts|module\.mjs)$/.test(process.argv[1] ?? "")) {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 1000 });
  await session.post("Profiler.start");
  let n = 0;
  process.on("SIGUSR2", async () => {
    const i = n++;
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(join(dir, `${i}.cpuprofile`), JSON.stringify(profile));
    writeHeapSnapshot(join(dir, `${i}.heapsnapshot`));
    writeFileSync(join(dir, `${i}.done`), "");
    await session.post("Profiler.start");
  });
}
