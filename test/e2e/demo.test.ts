// The README's demo command keeps working: two control planes, modules, tunnel, remote apply.
import { expect, it } from "vitest";
import { run } from "../helpers/k8s.ts";

// On real nodes where the machine allows it (hack/demo-nodes.ts: two more clusters with nodes and
// an in-cluster install, ~5 min here), else the process-based variant (~1 min).
it("npm run demo exits 0 and reports both results", async () => {
  const r = await run("bash", ["hack/demo.sh"], { timeoutMs: 900_000 });
  expect(r.stdout).toMatch(/GET \/\S* .*-> hello from cluster A's service/);
  expect(r.stdout).toContain("Pod test created remotely");
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain("cleaned up");
}, 920_000);
