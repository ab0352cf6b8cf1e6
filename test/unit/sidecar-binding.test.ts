// lib/controller/sidecar.ts, the Mutate and Validate bindings, on fake Pepr requests: which
// pods they leave alone, the warnings they approve with, and the Secret lookup (mocked: no
// cluster) only for pods that got the sidecar, in the pod's namespace or the request's.
import { beforeEach, describe, expect, it, vi } from "vitest";

const checked: Array<[string, string]> = [];
let secretOk = true;
vi.mock("../../lib/k8s/secrets.ts", () => ({
  checkTokenSecret: async (namespace: string, name: string) => {
    checked.push([namespace, name]);
    return secretOk ? { ok: true } : { ok: false, message: `Secret ${namespace}/${name} not found` };
  },
}));

const { mutatePod, validatePod } = await import("../../lib/controller/sidecar.ts");

type Any = Record<string, any>;
const L = (rest: Record<string, string>) => Object.fromEntries(Object.entries(rest).map(([k, v]) => [`entanglement.kairos.io/${k}`, v]));
const basic = L({ name: "s", service: "svc", target_port: "9090" });
const cfg = { image: "img", peers: [], p2pListen: [] } as unknown as Parameters<typeof mutatePod>[1];

function mutate(pod: Any): { pod: Any; annotations: Record<string, string> } {
  const out = structuredClone(pod);
  const annotations: Record<string, string> = {};
  mutatePod({ Raw: out, SetAnnotation: (k: string, v: string) => (annotations[k] = v) } as unknown as Parameters<typeof mutatePod>[0], cfg);
  return { pod: out, annotations };
}

async function validate(pod: Any, requestNamespace?: string): Promise<string[] | undefined> {
  let approved: string[] | undefined | null = null;
  await validatePod({
    Raw: pod,
    Request: { namespace: requestNamespace },
    Approve: (w?: string[]) => {
      approved = w;
      return { allowed: true };
    },
  } as unknown as Parameters<typeof validatePod>[0]);
  if (approved === null) throw new Error("not approved");
  return approved;
}

beforeEach(() => {
  checked.length = 0;
  secretOk = true;
});

describe("mutatePod", () => {
  it("a pod without entangle settings, or already injected, is left as it is", () => {
    const plain = { metadata: { name: "p" }, spec: { containers: [{ name: "app" }] } };
    expect(mutate(plain)).toEqual({ pod: plain, annotations: {} });
    const done = { metadata: { labels: basic, annotations: { "entanglement.kairos.io/injected": "connect svc" } }, spec: { containers: [{ name: "app" }] } };
    expect(mutate(done)).toEqual({ pod: done, annotations: {} });
  });

  it("a pod without a spec gets one holding the sidecar", () => {
    const { pod, annotations } = mutate({ metadata: { labels: basic } });
    expect(pod.spec.containers).toEqual([]);
    expect(pod.spec.initContainers.map((c: Any) => c.name)).toEqual(["entangle-agent"]);
    expect(pod.spec.hostNetwork).toBeUndefined();
    expect(pod.spec.dnsPolicy).toBeUndefined();
    expect(annotations).toEqual({ "entanglement.kairos.io/injected": "connect svc" });
  });

  it("incomplete settings: only the not-injected mark", () => {
    const { pod, annotations } = mutate({ metadata: { labels: L({ name: "s" }) }, spec: { containers: [] } });
    expect(pod.spec).toEqual({ containers: [] });
    expect(Object.keys(annotations)).toEqual(["entanglement.kairos.io/not-injected"]);
  });
});

describe("validatePod", () => {
  it("pods without the sidecar: approved with the parse warnings, or none; no Secret lookup", async () => {
    expect(await validate({ metadata: { name: "p" } })).toBeUndefined();
    const incomplete = await validate({ metadata: { labels: L({ name: "s" }) } });
    expect(incomplete).toHaveLength(1);
    expect(incomplete![0]).toMatch(/^entangle sidecar not injected: missing /);
    // asked for and parsed, but not injected (no mark): no lookup
    expect(await validate({ metadata: { labels: basic } })).toBeUndefined();
    expect(await validate({ metadata: { labels: { ...basic, ...L({ typo: "x" }) } } })).toEqual([
      "entanglement.kairos.io/typo is not an entangle setting: ignored",
    ]);
    // the injected mark set by hand on a pod whose request does not parse: warned, no lookup
    const forged = await validate({ metadata: { labels: L({ name: "s" }), annotations: { "entanglement.kairos.io/injected": "connect svc" } } });
    expect(forged![0]).toMatch(/^entangle sidecar not injected: missing /);
    expect(checked).toEqual([]);
  });

  it("an injected pod: its Secret is checked in the pod's namespace, else the request's, else default", async () => {
    const injected = (namespace?: string) => ({
      metadata: { labels: basic, annotations: { "entanglement.kairos.io/injected": "connect svc" }, ...(namespace ? { namespace } : {}) },
    });
    expect(await validate(injected("ns1"), "other")).toBeUndefined();
    expect(await validate(injected(), "ns2")).toBeUndefined();
    expect(await validate(injected())).toBeUndefined();
    expect(checked).toEqual([
      ["ns1", "s"],
      ["ns2", "s"],
      ["default", "s"],
    ]);
    secretOk = false;
    expect(await validate(injected("ns1"))).toEqual(["entangle: Secret ns1/s not found; the sidecar starts once it exists"]);
  });
});
