// Entangle down never blocks unrelated pods: with the module's pods scaled to zero (in-cluster
// install, real node), a pod that does not ask for Entangle is admitted as usual in any
// namespace, while one that asks for the sidecar is refused with a message naming Entangle
// (lib/admission/sidecar-guard.ts). A Deployment asking for it waits: its ReplicaSet retries, and
// once the module is back the pod is created with its sidecar. Figures printed, not asserted.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { getJson, kc, kubectl, until } from "../helpers/k8s.ts";

const { b } = inject("clusters");
const NS = "outage";
const SYSTEM = "pepr-system";
const MODULE = ["deployment/pepr-entangle", "deployment/pepr-entangle-watcher"];
type Any = Record<string, any>;

const LABELS = { "entanglement.kairos.io/name": "mysecret", "entanglement.kairos.io/service": "outage", "entanglement.kairos.io/target_port": "8080" };

const SPEC = { containers: [{ name: "app", image: "busybox:1.28", command: ["sleep", "3600"] }], terminationGracePeriodSeconds: 0 };

function pod(name: string, labels: Record<string, string> = {}, namespace = NS): string {
  return JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace, labels }, spec: SPEC });
}

async function scaleModule(replicas: number): Promise<void> {
  await kc(b.kubeconfig, ["-n", SYSTEM, "scale", ...MODULE, `--replicas=${replicas}`]);
  if (replicas > 0) {
    for (const d of MODULE) await kc(b.kubeconfig, ["-n", SYSTEM, "rollout", "status", d, "--timeout=180s"]);
  } else {
    await until("the module's pods gone", async () => (await getJson(b.kubeconfig, ["pods", "-n", SYSTEM])).items.length === 0, 120_000);
  }
}

beforeAll(async () => {
  await kubectl(b.kubeconfig, ["create", "namespace", NS]);
  await scaleModule(0);
}, 240_000);

afterAll(async () => {
  await scaleModule(1);
  await kubectl(b.kubeconfig, ["delete", "namespace", NS, "--wait=false"]);
}, 240_000);

describe("the module down (its pods scaled to zero)", () => {
  it("pods that do not ask for Entangle are admitted as usual, in any namespace", async () => {
    for (const [name, ns] of [
      ["plain", NS],
      ["plain-default", "default"],
    ]) {
      const t0 = Date.now();
      await kc(b.kubeconfig, ["create", "-f", "-"], pod(name, { app: "plain" }, ns));
      console.log(`pod ${ns}/${name} admitted in ${Date.now() - t0} ms with the module down`);
    }
    await kc(b.kubeconfig, ["-n", NS, "wait", "pod/plain", "--for=condition=Ready", "--timeout=120s"]);
    await kc(b.kubeconfig, ["-n", "default", "delete", "pod/plain-default", "--wait=false"]);
  });

  it("a pod that asks for the sidecar is refused, naming Entangle and what to do", async () => {
    const r = await kubectl(b.kubeconfig, ["create", "-f", "-"], pod("asks", LABELS));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("entangle-sidecar-guard");
    expect(r.stderr).toMatch(/Entangle's webhook did not see it: the module is not running/);
    expect(r.stderr).toContain("kubectl -n pepr-system get pods");
  });

  it("a Deployment that asks for it waits, and gets its pod with the sidecar once the module is back", async () => {
    await kc(
      b.kubeconfig,
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "waits", namespace: NS },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "waits" } },
          template: { metadata: { labels: { app: "waits", ...LABELS } }, spec: SPEC },
        },
      }),
    );
    const events = await until(
      "the ReplicaSet's FailedCreate naming the guard",
      async () => {
        const ev = await getJson(b.kubeconfig, ["events", "-n", NS, "--field-selector", "reason=FailedCreate"]);
        return ev.items.find((e: Any) => e.message.includes("entangle-sidecar-guard"));
      },
      60_000,
    );
    expect(events.message).toMatch(/entangle/);
    expect((await getJson(b.kubeconfig, ["pods", "-n", NS, "-l", "app=waits"])).items).toEqual([]);

    const t0 = Date.now();
    await scaleModule(1);
    const back = Date.now();
    const created = await until("the Deployment's pod", async () => (await getJson(b.kubeconfig, ["pods", "-n", NS, "-l", "app=waits"])).items[0], 180_000);
    console.log(
      `module Ready again ${((back - t0) / 1000).toFixed(1)} s after scaling up; the waiting pod created ${((Date.now() - back) / 1000).toFixed(1)} s later`,
    );
    expect(created.metadata.annotations["entanglement.kairos.io/injected"]).toBe("connect outage");
    expect((created.spec.initContainers ?? []).map((c: Any) => c.name)).toContain("entangle-agent");
  });
});
