// A watch of the module's API client keeps, of each object it saw, only what its relist needs:
// the resourceVersion to compare and the metadata a deletion is handled by
// (patches/kubernetes-fluent-client+3.11.6.patch, issue 11). Kept whole, every object of every
// watched kind stayed in the module's memory: every Secret of the cluster with its data, every
// Deployment with its managedFields. Checked against a real API server: ConfigMaps of 10 MiB of
// data in all, watched, cost the watch far less than their data.
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kubectl, until } from "../helpers/k8s.ts";

const NS = "watch-cache";
const COUNT = 40;
const DATA_BYTES = 256 * 1024;
const dir = mkdtempSync(join(tmpdir(), "entangle-watch-cache-"));
let kcfg = "";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/** The JS heap in use once the garbage is collected. */
function liveHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

beforeAll(async () => {
  kcfg = inject("kubeconfig");
  process.env.KUBECONFIG = kcfg;
  await kubectl(kcfg, ["create", "namespace", NS]);
  const items = Array.from({ length: COUNT }, (_, i) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `big-${i}`, namespace: NS },
    data: { blob: String(i % 10).repeat(DATA_BYTES) },
  }));
  const file = join(dir, "configmaps.json");
  writeFileSync(file, JSON.stringify({ apiVersion: "v1", kind: "List", items }));
  const r = await kubectl(kcfg, ["apply", "--server-side", "-f", file]);
  if (r.code !== 0) throw new Error(r.stderr);
}, 120_000);

afterAll(async () => {
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=false"]);
  rmSync(dir, { recursive: true, force: true });
});

it("keeps the metadata of what it watched, not the objects", async () => {
  const { K8s, kind } = await import("pepr");
  const before = liveHeap();
  const seen = new Set<string>();
  // the callback keeps nothing: whatever stays in memory, the watch holds
  const watcher = K8s(kind.ConfigMap)
    .InNamespace(NS)
    .Watch((cm) => void seen.add(cm.metadata?.name ?? ""));
  await watcher.start();
  try {
    await until("the watch to see every ConfigMap", async () => seen.size >= COUNT, 60_000);
    const held = liveHeap() - before;
    // their data alone is COUNT x 256 KiB = 10 MiB
    expect(held).toBeLessThan((COUNT * DATA_BYTES) / 4);
  } finally {
    watcher.close();
  }
}, 120_000);
