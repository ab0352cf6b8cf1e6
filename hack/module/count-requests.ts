// Preloaded (NODE_OPTIONS="--import ./hack/module/count-requests.ts") into a module run by
// hack/module.sh: appends one line "<METHOD> <path>" per HTTP request the module makes through
// undici (kubernetes-fluent-client's client: every Kubernetes API request, watches included) to
// $ENTANGLE_REQUEST_LOG. Used by hack/bench-controller.ts and test/k8s/scale.test.ts to count
// the module's API reads and writes without trusting the module to count itself.
import { subscribe } from "node:diagnostics_channel";
import { appendFileSync, createWriteStream } from "node:fs";

const path = process.env.ENTANGLE_REQUEST_LOG;
// NODE_OPTIONS reaches every node process hack/module.sh starts: count the module's own only
if (path && /(pepr\.ts|module\.mjs)$/.test(process.argv[1] ?? "")) {
  const out = createWriteStream(path, { flags: "a" });
  // lines are written in batches every FLUSH_MS: one write per request cost the module about 0.7 ms
  // of CPU each (4 % of its CPU in the 1,000-Entanglement bench), i.e. the counter skewed the count
  const FLUSH_MS = 100;
  let pending = "";
  const flush = () => {
    if (pending) out.write(pending);
    pending = "";
  };
  setInterval(flush, FLUSH_MS).unref();
  process.on("exit", () => {
    if (pending) appendFileSync(path, pending);
  });
  subscribe("undici:request:create", (message) => {
    const { request } = message as { request: { method: string; path: string; origin?: unknown } };
    pending += `${request.method} ${request.path}\n`;
  });
}
