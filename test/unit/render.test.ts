import { describe, expect, it } from "vitest";
import { renderEntanglement, objectName } from "../../lib/render/entanglement.ts";
import { parseSidecarRequest, renderSidecar, alreadyInjected } from "../../lib/render/sidecar.ts";
import { parsePort } from "../../lib/render/agent.ts";
import { moduleConfig, splitList } from "../../lib/config.ts";
import type { Entanglement } from "../../lib/crds/index.ts";
import { seedObject } from "../helpers/seed.ts";

const opts = { image: "example/entangle:1", peers: ["10.0.0.5:4001", "/ip4/10.0.0.6/tcp/4001"] };
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function cr(name: string): Entanglement {
  const o = seedObject(name, "Entanglement") as unknown as Entanglement;
  o.metadata!.uid = "1234-uid";
  return o;
}

describe("renderEntanglement (seed examples)", () => {
  it("outbound: Deployment running agent expose on the host network, token by secretKeyRef", () => {
    const r = renderEntanglement(cr("outbound-entanglement"), opts);
    if (!r.ok) throw new Error(r.message);
    expect(r.service).toBeUndefined();
    expect(r.direction).toBe("outbound");
    const d = r.deployment as Any;
    expect(d.metadata).toMatchObject({ name: "entangle-test2", namespace: "default" });
    expect(d.metadata.ownerReferences[0]).toMatchObject({ kind: "Entanglement", name: "test2", uid: "1234-uid", controller: true });
    const pod = d.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe("ClusterFirstWithHostNet");
    const c = pod.containers[0];
    expect(c.args).toEqual(["agent", "expose", "--service", "foo2", "--target", "192.168.1.1:80", "--health-listen", "0.0.0.0:8089", "--peer", "10.0.0.5:4001", "--peer", "/ip4/10.0.0.6/tcp/4001"]);
    expect(c.env[0]).toEqual({ name: "ENTANGLE_NETWORK_TOKEN", valueFrom: { secretKeyRef: { name: "mysecret", key: "network_token" } } });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: 8089 });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: 8089 });
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(d.spec.selector.matchLabels).toEqual(Object.fromEntries(Object.entries(d.spec.selector.matchLabels).filter(([k]) => k in d.spec.template.metadata.labels)));
  });

  it("inbound: agent connect listens on all interfaces (the Service must reach it) + Service from serviceSpec", () => {
    const r = renderEntanglement(cr("inbound-entanglement"), opts);
    if (!r.ok) throw new Error(r.message);
    const c = (r.deployment as Any).spec.template.spec.containers[0];
    expect(c.args.slice(0, 6)).toEqual(["agent", "connect", "--service", "foo2", "--listen", "0.0.0.0:8080"]);
    const s = r.service as Any;
    expect(s.metadata.name).toBe("test3");
    expect(s.spec.type).toBe("ClusterIP");
    expect(s.spec.ports).toEqual([{ port: 8080, protocol: "TCP", targetPort: 8080 }]);
    expect(s.spec.selector).toEqual((r.deployment as Any).spec.selector.matchLabels);
    for (const [k, v] of Object.entries(s.spec.selector)) expect((r.deployment as Any).spec.template.metadata.labels[k]).toBe(v);
  });

  it("never copies the token, honours env, image override and integer ports", () => {
    const e = cr("inbound-entanglement-cluster-b");
    e.spec!.port = 9000;
    e.spec!.image = "mine/agent:2";
    e.spec!.env = [{ name: "ENTANGLE_LOG_LEVEL", value: "debug" }];
    const r = renderEntanglement(e, opts);
    if (!r.ok) throw new Error(r.message);
    const c = (r.deployment as Any).spec.template.spec.containers[0];
    expect(c.image).toBe("mine/agent:2");
    expect(c.env[1]).toEqual({ name: "ENTANGLE_LOG_LEVEL", value: "debug" });
    expect(JSON.stringify(r)).not.toMatch(/YOUR_SECRET|network_token"?:\s*"[^n]/);
    expect((r.service as Any).spec.ports[0].targetPort).toBe(9000);
  });

  it("semantic errors are reported, not thrown", () => {
    for (const [patch, text] of [
      [{ port: "abc" }, "spec.port"],
      [{ port: 70000 }, "spec.port"],
      [{ serviceUUID: "" }, "serviceUUID"],
      [{ secretRef: undefined }, "secretRef"],
    ] as const) {
      const e = cr("outbound-entanglement");
      Object.assign(e.spec!, patch);
      const r = renderEntanglement(e, opts);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).toContain(text);
    }
  });

  it("keeps names within 63 characters, stable", () => {
    const long = "x".repeat(80);
    expect(objectName("entangle-", long)).toHaveLength(63);
    expect(objectName("entangle-", long)).toBe(objectName("entangle-", long));
    expect(objectName("entangle-", long)).not.toBe(objectName("entangle-", long + "y"));
  });
});

describe("sidecar", () => {
  it("seed pod: connect sidecar listening on 127.0.0.1:9090 as a native sidecar", () => {
    const pod = seedObject("sidecar-pod", "Pod") as Any;
    const p = parseSidecarRequest(pod);
    if (p.kind !== "ok") throw new Error(p.kind);
    expect(p.request).toMatchObject({ secret: "mysecret", service: "foo", mode: "connect", address: "127.0.0.1:9090", hostNetwork: false });
    const c = renderSidecar(p.request, opts) as Any;
    expect(c.restartPolicy).toBe("Always");
    expect(c.args.slice(0, 6)).toEqual(["agent", "connect", "--service", "foo", "--listen", "127.0.0.1:9090"]);
    expect(c.readinessProbe).toBeUndefined();
  });

  it("seed Deployment template (direction entangle): expose 127.0.0.1:8001", () => {
    const dep = seedObject("sidecar-deployment-cluster-a", "Deployment") as Any;
    const p = parseSidecarRequest(dep.spec.template);
    if (p.kind !== "ok") throw new Error(p.kind);
    expect(p.request).toMatchObject({ mode: "expose", address: "127.0.0.1:8001" });
  });

  it("annotations override labels; host, nethost, env.* and health_port", () => {
    const pod = {
      metadata: {
        labels: { "entanglement.kairos.io/name": "s", "entanglement.kairos.io/service": "a", "entanglement.kairos.io/target_port": "8089" },
        annotations: { "entanglement.kairos.io/service": "b", "entanglement.kairos.io/host": "0.0.0.0", "entanglement.kairos.io/nethost": "true", "entanglement.kairos.io/env.FOO": "bar" },
      },
    };
    const p = parseSidecarRequest(pod);
    if (p.kind !== "ok") throw new Error(p.kind);
    expect(p.request).toMatchObject({ service: "b", address: "0.0.0.0:8089", hostNetwork: true, healthPort: 8090, env: [{ name: "FOO", value: "bar" }] });
  });

  it("incomplete or invalid labels are explained; no labels is none", () => {
    expect(parseSidecarRequest({ metadata: { labels: { app: "x" } } })).toEqual({ kind: "none" });
    const p = parseSidecarRequest({ metadata: { labels: { "entanglement.kairos.io/name": "s" } } });
    expect(p.kind).toBe("incomplete");
    if (p.kind === "incomplete") expect(p.message).toContain("entanglement.kairos.io/service, entanglement.kairos.io/target_port");
    const bad = parseSidecarRequest({ metadata: { labels: { "entanglement.kairos.io/name": "s", "entanglement.kairos.io/service": "a", "entanglement.kairos.io/target_port": "99999" } } });
    expect(bad.kind).toBe("incomplete");
  });

  it("detects an injected pod", () => {
    expect(alreadyInjected({ spec: { initContainers: [{ name: "entangle-agent" }] } })).toBe(true);
    expect(alreadyInjected({ metadata: { annotations: { "entanglement.kairos.io/injected": "x" } } })).toBe(true);
    expect(alreadyInjected({ spec: { containers: [{ name: "app" }] } })).toBe(false);
  });
});

describe("config and ports", () => {
  it("parses ports and peer lists", () => {
    expect([parsePort("80"), parsePort(80), parsePort(" 8080 "), parsePort("0"), parsePort("65536"), parsePort("8o"), parsePort(undefined)]).toEqual([80, 80, 8080, undefined, undefined, undefined, undefined]);
    expect(splitList(" a:1, ,/ip4/1.2.3.4/tcp/5 ,")).toEqual(["a:1", "/ip4/1.2.3.4/tcp/5"]);
    expect(moduleConfig({ ENTANGLE_PEERS: "r:1", ENTANGLE_AGENT_IMAGE: "x/y:z" })).toMatchObject({ image: "x/y:z", peers: ["r:1"] });
  });
});
