// API writes of the Entanglement controller against the real API server (issue 11): a resync of
// unchanged objects and a module restart write nothing; one change costs a bounded number of
// writes. Every request the module makes is counted by hack/module/count-requests.ts (preloaded
// into the module), not by the module itself. Figures at scale: npm run bench:controller.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newToken } from "../../lib/p2p/token.ts";
import { kc, kubectl, moduleDown, moduleUp, until } from "../helpers/k8s.ts";

const CLUSTER = process.env.ENTANGLE_TEST_CLUSTER || "test";
const NS = "scale";
const COUNT = 12;
const dir = mkdtempSync(join(tmpdir(), "entangle-scale-"));
const LOG = join(dir, "requests.log");
let kcfg = "";

const lines = () => (existsSync(LOG) ? readFileSync(LOG, "utf8").split("\n").filter(Boolean) : []);
/** The module's requests since line `from` that concern our namespace: "METHOD path". */
const ours = (from: number) =>
  lines()
    .slice(from)
    .filter((l) => l.includes(`/namespaces/${NS}/`));
const writes = (reqs: string[]) => reqs.filter((l) => !l.startsWith("GET "));

/** Until the module made no request for 3 s. */
async function quiet(): Promise<void> {
  let last = -1;
  await until(
    "the module to go quiet",
    async () => {
      const now = lines().length;
      const still = now === last;
      last = now;
      if (!still) await new Promise((r) => setTimeout(r, 3_000));
      return still;
    },
    120_000,
  );
}

function entanglement(i: number, port = 8080): string {
  const spec =
    i % 2 === 0
      ? {
          serviceUUID: `svc-${i}`,
          secretRef: "token",
          host: "127.0.0.1",
          port: String(port),
          inbound: true,
          serviceSpec: { ports: [{ port, protocol: "TCP" }], type: "ClusterIP" },
        }
      : { serviceUUID: `svc-${i}`, secretRef: "token", host: "192.168.1.1", port: String(port) };
  return JSON.stringify({ apiVersion: "entangle.kairos.io/v1alpha1", kind: "Entanglement", metadata: { name: `e${i}`, namespace: NS }, spec });
}

async function allStatusWritten(): Promise<boolean> {
  const out = await kc(kcfg, [
    "get",
    "entanglements",
    "-n",
    NS,
    "-o",
    'jsonpath={range .items[*]}{.metadata.generation}/{.status.observedGeneration}/{.status.conditions[?(@.type=="Ready")].reason}{"\\n"}{end}',
  ]);
  const rows = out.split("\n").filter(Boolean);
  return rows.length === COUNT && rows.every((r) => /^(\d+)\/\1\/AgentNotReady$/.test(r));
}

const startModule = () => moduleUp(CLUSTER, { NODE_OPTIONS: "--import ./hack/module/count-requests.ts", ENTANGLE_REQUEST_LOG: LOG });

beforeAll(async () => {
  kcfg = inject("kubeconfig");
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=true", "--timeout=60s"]);
  await moduleDown(CLUSTER); // started again below, counting its requests
  await startModule();
  await kc(kcfg, ["create", "namespace", NS]);
  await kc(kcfg, ["create", "secret", "generic", "token", "-n", NS, `--from-literal=network_token=${newToken()}`]);
  await kc(kcfg, ["apply", "-f", "-"], Array.from({ length: COUNT }, (_, i) => entanglement(i)).join("\n"));
  await until("every Entanglement's status", allStatusWritten, 90_000);
  await quiet();
}, 300_000);

afterAll(async () => {
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=false"]);
  await moduleDown(CLUSTER);
  rmSync(dir, { recursive: true, force: true });
});

describe("Entanglement controller: API writes", () => {
  it("a resync of unchanged Entanglements (their Secret touched: all reconciled) makes no request", async () => {
    const from = lines().length;
    await kc(kcfg, ["annotate", "secret", "token", "-n", NS, `touched=${Date.now()}`]);
    // every one is reconciled from what the watches delivered (lib/controller/caches.ts): no read either
    await new Promise((r) => setTimeout(r, 5_000));
    await quiet();
    expect(ours(from)).toEqual([]);
  });

  it("a module restart with existing Entanglements converges without a write", async () => {
    await moduleDown(CLUSTER);
    const from = lines().length;
    await startModule();
    // the CRs' watch started (each arrives in it: a reconcile of each, from the event's object)
    await until("the Entanglements' watch", async () =>
      lines()
        .slice(from)
        .some((l) => l.startsWith("GET /apis/entangle.kairos.io/v1alpha1/entanglements?")),
    );
    await new Promise((r) => setTimeout(r, 5_000));
    await quiet();
    expect(writes(ours(from))).toEqual([]);
    // bounded reads too: per Entanglement its CR, Deployment, Service, Secret and pods, about once
    expect(ours(from).length).toBeLessThanOrEqual(COUNT * 10);
    // the namespace's managed Deployments listed once, none read by name (issue 11)
    expect(ours(from).filter((l) => /^GET \/apis\/apps\/v1\/namespaces\/[^/]+\/deployments\/[^/?]+/.test(l))).toEqual([]);
  }, 180_000); // hack/module.sh down + up: 30-60 s on a loaded 2-core machine

  it("one spec change: its Deployment, Service and status written once, one Event at most", async () => {
    const from = lines().length;
    await kc(kcfg, [
      "patch",
      "entanglement",
      "e0",
      "-n",
      NS,
      "--type",
      "merge",
      "-p",
      '{"spec":{"port":"9090","serviceSpec":{"ports":[{"port":9090,"protocol":"TCP"}]}}}',
    ]);
    await until("the new generation's status", allStatusWritten, 60_000);
    await quiet();
    const w = writes(ours(from)).map((l) => l.replace(/\?.*$/, ""));
    expect(w.filter((l) => l.startsWith("PATCH") && l.includes("/deployments/entangle-e0"))).toHaveLength(1);
    expect(w.filter((l) => l.startsWith("PATCH") && l.includes("/services/e0"))).toHaveLength(1);
    expect(w.filter((l) => l.endsWith("/entanglements/e0/status"))).toHaveLength(1);
    expect(w.length).toBeLessThanOrEqual(4);
    expect(w.every((l) => /\/(entangle-)?e0(\/status)?$|\/events$/.test(l))).toBe(true);
  }, 120_000);

  // (last: the others count COUNT Entanglements)
  it("a deleted Entanglement is forgotten: the garbage collection of its objects costs no request", async () => {
    const from = lines().length;
    await kc(kcfg, ["delete", "entanglement", "e2", "-n", NS, "--wait=true"]);
    const gone = async (what: string) => (await kubectl(kcfg, ["get", what, "-n", NS])).code !== 0;
    await until("its Deployment and Service collected", async () => (await gone("deployment/entangle-e2")) && (await gone("service/e2")), 60_000);
    await quiet();
    // remembered, their deletion events would send the module to read the Entanglement again
    expect(ours(from).filter((l) => /\/entanglements\/e2\b|\/deployments\/entangle-e2\b|\/services\/e2\b/.test(l))).toEqual([]);
  }, 120_000);
});
