// Fields of the rendered objects and edges of the names that the mutation run of
// lib/render/entanglement.ts found unchecked: kinds, the pod's security settings, the selector,
// the inbound container port, a Service with no ports of the user's, names at 63 characters.
import { describe, expect, it } from "vitest";
import { objectName, renderEntanglement, serviceName } from "../../lib/render/entanglement.ts";
import type { Entanglement } from "../../lib/crds/index.ts";

type Any = Record<string, any>;
const opts = { image: "example/entangle:1", peers: [] };
const cr = (spec: Record<string, unknown>, name = "web"): Entanglement =>
  ({ metadata: { name, namespace: "ns", uid: "u1" }, spec: { serviceUUID: "svc", secretRef: "tok", ...spec } }) as unknown as Entanglement;
const ok = (e: Entanglement): Any => {
  const r = renderEntanglement(e, opts);
  if (!r.ok) throw new Error(r.message);
  return r;
};

describe("rendered objects", () => {
  it("a Deployment of apps/v1 whose pod runs as non-root, RuntimeDefault seccomp, no service links", () => {
    const { deployment: d } = ok(cr({ host: "10.0.0.1", port: 80 }));
    expect([d.apiVersion, d.kind]).toEqual(["apps/v1", "Deployment"]);
    const pod = d.spec.template.spec;
    expect(pod.enableServiceLinks).toBe(false);
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(d.spec.selector.matchLabels).toEqual({ "entangle.kairos.io/entanglement": "web", "app.kubernetes.io/managed-by": "entangle" });
    // outbound: no service port on the container
    expect(pod.containers[0].ports.map((p: Any) => p.name)).not.toContain("service");
  });

  it("inbound: a v1 Service, and the container declares the service port; no user ports means the one default port", () => {
    const r = ok(cr({ inbound: true, port: 8080, serviceSpec: { ports: [] } }));
    expect([r.service.apiVersion, r.service.kind]).toEqual(["v1", "Service"]);
    expect(r.deployment.spec.template.spec.containers[0].ports).toContainEqual({ name: "service", containerPort: 8080, protocol: "TCP" });
    expect(r.service.spec.ports).toHaveLength(1);
    expect(r.service.spec.ports[0]).toMatchObject({ port: 8080 });
  });

  it("refusals name the field: an empty secretRef, a bad port (its value), a reserved env", () => {
    const msg = (spec: Record<string, unknown>) => (renderEntanglement(cr(spec), opts) as { message: string }).message;
    expect(msg({ secretRef: "  ", port: 80 })).toMatch(/^spec\.secretRef is required/);
    expect(msg({ port: "x" })).toBe('spec.port must be a number from 1 to 65535, got "x"');
    expect(msg({ port: 80, env: [null, { name: "ENTANGLE_NETWORK_TOKEN", value: "t" }] })).toMatch(/^spec\.env must not set ENTANGLE_NETWORK_TOKEN/);
  });
});

describe("names", () => {
  it("objectName: 63 characters kept, 64 cut to 54 plus a hash, without a trailing dash or dot before it", () => {
    expect(objectName("", "a".repeat(63))).toBe("a".repeat(63));
    const cut = objectName("", "a".repeat(64));
    expect(cut).toMatch(/^a{54}-[0-9a-f]{8}$/);
    expect(objectName("", `${"a".repeat(52)}.-${"b".repeat(20)}`)).toMatch(/^a{52}-[0-9a-f]{8}$/);
    expect(objectName("", "a".repeat(64))).not.toBe(objectName("", "a".repeat(63) + "b"));
    // the hash is stable across versions: it is part of existing objects' names
    expect(cut).toBe("a".repeat(54) + "-72da0400");
  });

  it("serviceName: a DNS-1035 label kept; otherwise cleaned, cut without trailing dashes, hashed", () => {
    expect(serviceName("a")).toBe("a");
    expect(serviceName("a.b")).toMatch(/^a-b-[0-9a-f]{8}$/);
    expect(serviceName(`${"a".repeat(53)}..x`)).toMatch(/^a{53}-[0-9a-f]{8}$/);
  });
});
