import { describe, expect, it } from "vitest";
import {
  parseSidecarRequest,
  renderSidecar,
  sidecarPatch,
  sidecarWarnings,
  alreadyInjected,
  INJECTED_ANNOTATION,
  NOT_INJECTED_ANNOTATION,
  type PodLike,
} from "../../lib/render/sidecar.ts";
import { renderEntanglement } from "../../lib/render/entanglement.ts";
import { mutatePod } from "../../lib/controller/sidecar.ts";
import type { Entanglement } from "../../lib/crds/index.ts";
import { seedObject } from "../helpers/seed.ts";

type Any = Record<string, any>;

const opts = { image: "example/entangle:1", peers: ["10.0.0.5:4001"] };
const L = (rest: Record<string, string>) => Object.fromEntries(Object.entries(rest).map(([k, v]) => [`entanglement.kairos.io/${k}`, v]));
const basic = L({ name: "s", service: "svc", target_port: "9090" });

function ok(pod: PodLike) {
  const p = parseSidecarRequest(pod);
  if (p.kind !== "ok") throw new Error(JSON.stringify(p));
  return p.request;
}

/** Runs the Mutate binding itself (lib/controller/sidecar.ts) on a copy of the pod. */
function inject(pod: Any): Any {
  const out = structuredClone(pod);
  const req = {
    Raw: out,
    SetAnnotation(key: string, value: string) {
      out.metadata = out.metadata ?? {};
      out.metadata.annotations = { ...out.metadata.annotations, [key]: value };
    },
  };
  mutatePod(req as unknown as Parameters<typeof mutatePod>[0], { ...opts, p2pListen: [] });
  return out;
}

describe("sidecar: the seed's examples", () => {
  it("Pod with labels: connect sidecar listening on 127.0.0.1:9090, as a native sidecar", () => {
    const pod = seedObject("sidecar-pod", "Pod") as Any;
    const request = ok(pod);
    expect(request).toEqual({ secret: "mysecret", service: "foo", mode: "connect", address: "127.0.0.1:9090", hostNetwork: false, healthPort: 8089, env: [] });
    const c = renderSidecar(request, opts) as Any;
    expect(c.name).toBe("entangle-agent");
    expect(c.restartPolicy).toBe("Always");
    expect(c.command).toEqual(["entangle"]);
    expect(c.args).toEqual([
      "agent",
      "connect",
      "--service",
      "foo",
      "--listen",
      "127.0.0.1:9090",
      "--health-listen",
      "[$(ENTANGLE_POD_IP)]:8089",
      "--peer",
      "10.0.0.5:4001",
    ]);
    expect(c.env).toEqual([
      { name: "ENTANGLE_NETWORK_TOKEN", valueFrom: { secretKeyRef: { name: "mysecret", key: "network_token" } } },
      // the health server listens on the pod IP only: with nethost, 0.0.0.0 is every node address
      { name: "ENTANGLE_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
    ]);
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: 8089 });
    expect(c.startupProbe.httpGet).toEqual({ path: "/healthz", port: 8089 });
    expect(c.readinessProbe).toBeUndefined(); // never holds the user's pod unready
    expect(c).toMatchObject({ terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "FallbackToLogsOnError" });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    const injected = inject(pod);
    expect(injected.spec.hostNetwork).toBeUndefined();
    expect(injected.spec.dnsPolicy).toBeUndefined();
    expect(injected.spec.containers).toEqual(pod.spec.containers);
    expect(JSON.stringify(injected)).not.toContain((seedObject("sidecar-pod", "Secret").stringData as Any).network_token);
  });

  for (const fixture of ["managed-cluster", "sidecar-deployment-cluster-a"]) {
    it(`${fixture}: Deployment template with direction entangle exposes 127.0.0.1:8001`, () => {
      const template = (seedObject(fixture, "Deployment").spec as Any).template;
      expect(ok(template)).toMatchObject({ secret: "mysecret", service: "foo", mode: "expose", address: "127.0.0.1:8001", hostNetwork: false });
      expect(renderSidecar(ok(template), opts).args!.slice(0, 6)).toEqual(["agent", "expose", "--service", "foo", "--target", "127.0.0.1:8001"]);
    });
  }
});

describe("sidecar: parsing", () => {
  it("a Job's pod has only generateName at admission: injected all the same", () => {
    const pod = {
      metadata: { generateName: "job-x-", labels: { "job-name": "x", ...basic } },
      spec: { restartPolicy: "Never", containers: [{ name: "main" }] },
    };
    const out = inject(pod);
    expect(out.spec.initContainers.map((c: Any) => [c.name, c.restartPolicy])).toEqual([["entangle-agent", "Always"]]);
    expect(out.metadata.annotations[INJECTED_ANNOTATION]).toBe("connect svc");
  });

  it("annotations override labels; host, nethost, direction and env.*", () => {
    const pod = {
      metadata: {
        labels: { ...basic, ...L({ direction: "connect" }) },
        annotations: L({ service: "other", direction: "entangle", host: "10.0.0.9", nethost: "true", "env.FOO": "bar", "env.ENTANGLE_LOG_LEVEL": "debug" }),
      },
    };
    expect(ok(pod)).toEqual({
      secret: "s",
      service: "other",
      mode: "expose",
      address: "10.0.0.9:9090",
      hostNetwork: true,
      healthPort: 8089,
      env: [
        { name: "FOO", value: "bar" },
        { name: "ENTANGLE_LOG_LEVEL", value: "debug" },
      ],
    });
  });

  it("health port: 8089 unless taken by target_port or a declared port; the annotation wins", () => {
    expect(ok({ metadata: { labels: L({ name: "s", service: "a", target_port: "8089" }) } }).healthPort).toBe(8090);
    const declared = { containers: [{ name: "app", ports: [{ containerPort: 8089 }, { containerPort: 8090 }] }] };
    expect(ok({ metadata: { labels: basic }, spec: declared }).healthPort).toBe(8091);
    expect(ok({ metadata: { labels: basic, annotations: L({ health_port: "7000" }) } }).healthPort).toBe(7000);
    expect(ok({ metadata: { labels: { ...basic, ...L({ host: "fd00::2" }) } } }).address).toBe("[fd00::2]:9090");
  });

  it("no entangle labels: none (not even the agent Deployment's own pods)", () => {
    expect(parseSidecarRequest({ metadata: { labels: { app: "x" } } })).toEqual({ kind: "none" });
    expect(parseSidecarRequest({})).toEqual({ kind: "none" });
    const r = renderEntanglement(structuredClone(seedObject("inbound-entanglement", "Entanglement")) as unknown as Entanglement, opts);
    if (!r.ok) throw new Error(r.message);
    expect(parseSidecarRequest(r.deployment.spec!.template as PodLike)).toEqual({ kind: "none" });
  });

  it("incomplete or invalid settings are explained, and nothing is injected", () => {
    const p = parseSidecarRequest({ metadata: { labels: L({ name: "s" }) } });
    expect(p).toEqual({
      kind: "incomplete",
      missing: ["entanglement.kairos.io/service", "entanglement.kairos.io/target_port"],
      invalid: [],
      message: "entangle sidecar not injected: missing entanglement.kairos.io/service, entanglement.kairos.io/target_port",
    });
    for (const [extra, key] of [
      [L({ target_port: "99999" }), "target_port"],
      [L({ target_port: "http" }), "target_port"],
      [L({ health_port: "9090" }), "health_port"],
      [L({ host: "a b" }), "host"],
      [L({ "env.1X": "y" }), "env.1X"],
      // the API server would refuse the whole Pod over a secretKeyRef naming an invalid Secret
      [L({ name: "My_Secret" }), "name"],
      [L({ name: "a".repeat(254) }), "name"],
      // the token comes from the Secret only: an annotation must not replace it
      [L({ "env.ENTANGLE_NETWORK_TOKEN": "entangle1.x" }), "env.ENTANGLE_NETWORK_TOKEN"],
      [L({ "env.EDGEVPNTOKEN": "x" }), "env.EDGEVPNTOKEN"],
      [L({ nethost: "yes" }), "nethost"],
    ] as const) {
      const bad = parseSidecarRequest({ metadata: { labels: basic, annotations: extra } });
      expect(bad).toMatchObject({ kind: "incomplete", missing: [], invalid: [`entanglement.kairos.io/${key}`] });
      if (bad.kind === "incomplete") expect(bad.message).toContain(`entanglement.kairos.io/${key}`);
      const pod = { metadata: { labels: basic, annotations: extra }, spec: { containers: [{ name: "app" }] } };
      // nothing injected; only marked with why, for kubectl describe and the sidecar guard
      const message = bad.kind === "incomplete" ? bad.message : "";
      expect(inject(pod)).toEqual({ ...pod, metadata: { ...pod.metadata, annotations: { ...extra, [NOT_INJECTED_ANNOTATION]: message } } });
    }
  });
});

describe("sidecar: warnings at admission", () => {
  const pod = (labels: Record<string, string>, containers = [{ name: "app" }]) => ({ metadata: { labels: { ...basic, ...labels } }, spec: { containers } });
  const warnings = (p: Any) => sidecarWarnings(p, parseSidecarRequest(p));

  it("a direction other than entangle or connect means connect, with a warning", () => {
    const typo = pod(L({ direction: "entagle" }));
    expect(ok(typo).mode).toBe("connect");
    expect(warnings(inject(typo))).toEqual([expect.stringContaining('entanglement.kairos.io/direction "entagle"')]);
    for (const fine of [{}, L({ direction: "connect" }), L({ direction: "entangle" })]) expect(warnings(inject(pod(fine)))).toEqual([]);
  });

  it("an unknown entanglement.kairos.io/ key is named (a typo of an optional key)", () => {
    expect(warnings(inject(pod(L({ hots: "10.0.0.1" }))))).toEqual([expect.stringContaining("entanglement.kairos.io/hots")]);
  });

  it("a container of the pod's own named entangle-agent prevents injection, with a warning", () => {
    const clash = pod({}, [{ name: "entangle-agent" }]);
    expect(inject(clash)).toEqual({ ...clash, metadata: { ...clash.metadata, annotations: { [NOT_INJECTED_ANNOTATION]: warnings(clash)[0] } } });
    expect(warnings(clash)).toEqual([expect.stringContaining("entangle-agent")]);
    expect(warnings(inject(pod({})))).toEqual([]); // our own, injected sidecar is no clash
  });

  it("incomplete settings: the explanation", () => {
    const p = { metadata: { labels: L({ name: "s" }) } };
    expect(warnings(p)).toEqual([(parseSidecarRequest(p) as { message: string }).message]);
    expect(warnings({ metadata: {} })).toEqual([]);
  });
});

describe("sidecar: injection", () => {
  it("never injects twice", () => {
    const pod = { metadata: { name: "p", labels: basic }, spec: { containers: [{ name: "app" }] } };
    const once = inject(pod);
    expect(alreadyInjected(once)).toBe(true);
    expect(inject(once)).toEqual(once);
    expect(alreadyInjected({ spec: { containers: [{ name: "entangle-agent" }] } })).toBe(true);
    expect(alreadyInjected({ spec: { initContainers: [{ name: "entangle-agent" }] } })).toBe(true);
    expect(alreadyInjected({ metadata: { annotations: { [INJECTED_ANNOTATION]: "" } } })).toBe(true);
    expect(alreadyInjected(pod)).toBe(false);
  });

  it("goes first among init containers; hostNetwork only with nethost; a chosen DNS policy is kept", () => {
    const pod = { metadata: { labels: basic }, spec: { initContainers: [{ name: "migrate", image: "m" }], containers: [{ name: "app" }] } };
    const patch = sidecarPatch(pod, ok(pod), opts);
    expect(patch.initContainers.map((c) => c.name)).toEqual(["entangle-agent", "migrate"]);
    expect(patch).toMatchObject({ hostNetwork: false, annotations: { [INJECTED_ANNOTATION]: "connect svc" } });
    expect(patch.dnsPolicy).toBeUndefined();

    const net = { metadata: { labels: { ...basic, ...L({ nethost: "true" }) } }, spec: { containers: [{ name: "app" }] } };
    expect(sidecarPatch(net, ok(net), opts)).toMatchObject({ hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" });
    const ownDns = { ...net, spec: { ...net.spec, dnsPolicy: "None" } };
    expect(sidecarPatch(ownDns, ok(ownDns), opts).dnsPolicy).toBeUndefined();
  });

  it("the Mutate binding applies nethost: hostNetwork and ClusterFirstWithHostNet on the pod, a pod's own DNS policy kept", () => {
    const net = { metadata: { labels: { ...basic, ...L({ nethost: "true" }) } }, spec: { containers: [{ name: "app" }] } };
    const out = inject(net);
    expect(out.spec).toMatchObject({ hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" });
    expect(out.spec.initContainers.map((c: Any) => c.name)).toEqual(["entangle-agent"]);
    expect(out.metadata.annotations).toEqual({ [INJECTED_ANNOTATION]: "connect svc" });
    expect(inject({ ...net, spec: { ...net.spec, dnsPolicy: "None" } }).spec).toMatchObject({ hostNetwork: true, dnsPolicy: "None" });
    expect(inject({ ...net, spec: { ...net.spec, dnsPolicy: "ClusterFirst" } }).spec.dnsPolicy).toBe("ClusterFirstWithHostNet");
    const plain = inject({ metadata: { labels: basic }, spec: { containers: [{ name: "app" }] } });
    expect(plain.spec.hostNetwork).toBeUndefined();
    expect(plain.spec.dnsPolicy).toBeUndefined();
    // a pod without a spec (not possible from the API server, but the binding must not throw)
    expect(inject({ metadata: { labels: basic } }).spec.initContainers).toHaveLength(1);
  });
});
