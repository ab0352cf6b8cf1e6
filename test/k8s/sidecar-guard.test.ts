// The sidecar guard against the real API server: its CEL refuses a pod that asks for the
// sidecar unless the module's webhook marked it, and nothing else. The module's webhooks fail
// open (failurePolicy Ignore), so this is what keeps a pod from starting silently without its
// agent while the module is down. The real-node outage test (test/nodes) covers the in-cluster module.
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GUARD_MESSAGE, GUARD_NAME, sidecarGuard } from "../../lib/admission/sidecar-guard.ts";
import { INJECTED_ANNOTATION, NOT_INJECTED_ANNOTATION } from "../../lib/render/sidecar.ts";
import { getJson, kc, kubectl, moduleDown, moduleUp, until } from "../helpers/k8s.ts";

const CLUSTER = process.env.ENTANGLE_TEST_CLUSTER || "test";
const NS = "guard-test";
let kcfg = "";

const LABELS = { "entanglement.kairos.io/name": "tok", "entanglement.kairos.io/service": "web", "entanglement.kairos.io/target_port": "8080" };

function pod(name: string, meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}, namespace = NS): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, ...meta },
    spec: { containers: [{ name: "app", image: "busybox:1.28" }] },
  });
}

/** Server-side dry run: every admission step runs, nothing persists. */
async function admit(manifest: string): Promise<{ ok: boolean; stderr: string; obj?: any }> {
  const r = await kubectl(kcfg, ["create", "--dry-run=server", "-o", "json", "-f", "-"], manifest);
  return { ok: r.code === 0, stderr: r.stderr, obj: r.code === 0 ? JSON.parse(r.stdout) : undefined };
}

/** The guard's CEL compiles asynchronously after it is created: wait until it refuses. */
async function guardActive(): Promise<void> {
  await until("the guard to refuse an unmarked pod", async () => !(await admit(pod("probe", { labels: LABELS }))).ok, 20_000);
}

beforeAll(async () => {
  kcfg = inject("kubeconfig");
  await moduleDown(CLUSTER); // no webhook: only the guard decides
  await kubectl(kcfg, ["create", "namespace", NS]);
  await kc(
    kcfg,
    ["apply", "--server-side", "-f", "-"],
    sidecarGuard([])
      .map((o) => yaml.dump(o))
      .join("---\n"),
  );
  await guardActive();
}, 240_000);

afterAll(async () => {
  await moduleDown(CLUSTER); // also removes the guard
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=false"]);
});

describe("sidecar guard (ValidatingAdmissionPolicy) without the module", () => {
  it("refuses a pod that asks for the sidecar by labels, naming Entangle and what to do", async () => {
    const r = await admit(pod("asks", { labels: LABELS }));
    expect(r.ok).toBe(false);
    expect(r.stderr).toContain(GUARD_NAME);
    expect(r.stderr).toContain(GUARD_MESSAGE.slice(0, 80));
  });

  it("refuses one that asks by annotations only, or with only some of the settings", async () => {
    expect((await admit(pod("by-annotation", { annotations: LABELS }))).ok).toBe(false);
    expect((await admit(pod("partial", { labels: { "entanglement.kairos.io/service": "web" } }))).ok).toBe(false);
  });

  it("admits every pod that does not ask, and pods the webhook marked", async () => {
    expect((await admit(pod("plain"))).ok).toBe(true);
    expect((await admit(pod("other-labels", { labels: { app: "web", "entanglement.kairos.io/direction": "entangle" } }))).ok).toBe(true);
    expect((await admit(pod("injected", { labels: LABELS, annotations: { [INJECTED_ANNOTATION]: "connect web" } }))).ok).toBe(true);
    expect((await admit(pod("not-injected", { labels: LABELS, annotations: { [NOT_INJECTED_ANNOTATION]: "why" } }))).ok).toBe(true);
  });

  it("leaves kube-system alone, as the module's webhooks do", async () => {
    expect((await admit(pod("system", { labels: LABELS }, "kube-system"))).ok).toBe(true);
  });
});

describe("with the module running", () => {
  beforeAll(async () => {
    await moduleUp(CLUSTER);
  }, 240_000);

  it("the watcher applied the guard, and the webhook marks what it saw: injected, or why not", async () => {
    const vap = await getJson(kcfg, ["validatingadmissionpolicy", GUARD_NAME]);
    expect(vap.spec.validations[0].message).toBe(GUARD_MESSAGE);
    const injected = await admit(pod("asks", { labels: LABELS }));
    expect(injected.ok).toBe(true);
    expect(injected.obj.metadata.annotations[INJECTED_ANNOTATION]).toBe("connect web");
    const partial = await admit(pod("partial", { labels: { "entanglement.kairos.io/service": "web" } }));
    expect(partial.ok).toBe(true);
    expect(partial.obj.metadata.annotations[NOT_INJECTED_ANNOTATION]).toMatch(/missing entanglement.kairos.io\/name/);
    expect(partial.stderr).toMatch(/missing entanglement.kairos.io\/name/); // the warning kubectl prints
  });
});
