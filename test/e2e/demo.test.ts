// The README's demo command keeps working: two control planes, modules, tunnel, remote apply.
import { expect, it } from "vitest";
import { run } from "../helpers/k8s.ts";

it("npm run demo exits 0 and reports both results", async () => {
  const r = await run("bash", ["hack/demo.sh"], { timeoutMs: 300_000 });
  expect(r.stdout).toMatch(/GET \/\S* .*-> hello from cluster A's service/);
  expect(r.stdout).toContain("Pod test created remotely");
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain("cleaned up");
}, 320_000);
