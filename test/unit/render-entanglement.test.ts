import { describe, expect, it } from "vitest";
import { renderEntanglement, objectName, serviceName } from "../../lib/render/entanglement.ts";
import type { Entanglement } from "../../lib/crds/index.ts";
import { seedObject } from "../helpers/seed.ts";

type Any = Record<string, any>;

const opts = { image: "example/entangle:1", peers: ["10.0.0.5:4001", "/ip4/10.0.0.6/tcp/4001"] };
const peerArgs = ["--peer", "10.0.0.5:4001", "--peer", "/ip4/10.0.0.6/tcp/4001"];

/** A seed Entanglement as the API server would hand it over (with a uid). */
function cr(name: string, patch: Record<string, unknown> = {}): Entanglement {
  const o = structuredClone(seedObject(name, "Entanglement")) as unknown as Entanglement;
  o.metadata!.uid = "1234-uid";
  Object.assign(o.spec!, patch);
  return o;
}

function render(e: Entanglement, o: Any = opts): { d: Any; s?: Any; direction: string; pod: Any; c: Any } {
  const r = renderEntanglement(e, o as typeof opts);
  if (!r.ok) throw new Error(r.message);
  const d = r.deployment as Any;
  return { d, s: r.service as Any | undefined, direction: r.direction, pod: d.spec.template.spec, c: d.spec.template.spec.containers[0] };
}

/** The token of the seed's Secret next to the CR: it must never show up in rendered objects. */
const seedToken = (name: string) => (seedObject(name, "Secret").stringData as Any).network_token as string;

function expectCommon(d: Any, c: Any, crName: string): void {
  expect(d.metadata.ownerReferences).toEqual([
    { apiVersion: "entangle.kairos.io/v1alpha1", kind: "Entanglement", name: crName, uid: "1234-uid", controller: true, blockOwnerDeletion: true },
  ]);
  expect(d.metadata.labels).toEqual({
    "app.kubernetes.io/name": "entangle-agent",
    "app.kubernetes.io/instance": crName,
    "app.kubernetes.io/managed-by": "entangle",
    "entangle.kairos.io/entanglement": crName,
  });
  expect(d.spec.template.metadata.labels).toEqual(d.metadata.labels);
  for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(v);
  expect(c.name).toBe("entangle-agent");
  expect(c.command).toEqual(["entangle"]);
  expect(c.env[0]).toEqual({ name: "ENTANGLE_NETWORK_TOKEN", valueFrom: { secretKeyRef: { name: "mysecret", key: "network_token" } } });
  expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: 8089 });
  expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: 8089 });
  expect(c.securityContext).toEqual({
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  });
  expect(c.resources).toEqual({ requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } });
  expect(d.spec.template.spec.automountServiceAccountToken).toBe(false);
  // why an agent exited (its one-line error) reaches the pod's status, where the controller reads it
  expect(c).toMatchObject({ terminationMessagePath: "/dev/termination-log", terminationMessagePolicy: "FallbackToLogsOnError" });
  // --health-listen names the pod IP only (0.0.0.0 on the host network is every node address)
  expect(c.env.at(-1)).toEqual({ name: "ENTANGLE_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } });
}

describe("renderEntanglement: the seed's examples", () => {
  it("outbound (test2): Deployment running agent expose on the host network", () => {
    const { d, s, direction, pod, c } = render(cr("outbound-entanglement"));
    expect(s).toBeUndefined();
    expect(direction).toBe("outbound");
    expect(d.metadata).toMatchObject({ name: "entangle-test2", namespace: "default" });
    expectCommon(d, c, "test2");
    expect(c.args).toEqual(["agent", "expose", "--service", "foo2", "--target", "192.168.1.1:80", "--health-listen", "[$(ENTANGLE_POD_IP)]:8089", ...peerArgs]);
    expect(pod).toMatchObject({ hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" });
    expect(d.spec.strategy).toEqual({ type: "Recreate" }); // a host port cannot surge on one node
    expect(JSON.stringify(d)).not.toContain(seedToken("outbound-entanglement"));
  });

  for (const [fixture, name, service] of [
    ["inbound-entanglement", "test3", "foo2"],
    ["inbound-entanglement-cluster-b", "test", "foo"],
  ] as const) {
    it(`inbound (${name}): agent connect on all interfaces + Service from serviceSpec`, () => {
      const { d, s, direction, pod, c } = render(cr(fixture));
      expect(direction).toBe("inbound");
      expect(d.metadata.name).toBe(`entangle-${name}`);
      expectCommon(d, c, name);
      // host 127.0.0.1 in the seed: the Service reaches the pod IP, so the agent listens on 0.0.0.0
      expect(c.args).toEqual([
        "agent",
        "connect",
        "--service",
        service,
        "--listen",
        "0.0.0.0:8080",
        "--health-listen",
        "[$(ENTANGLE_POD_IP)]:8089",
        ...peerArgs,
      ]);
      expect(c.ports).toContainEqual({ name: "service", containerPort: 8080, protocol: "TCP" });
      expect(pod.hostNetwork).toBeUndefined();
      expect(d.spec.strategy).toBeUndefined();

      expect(s!.metadata).toEqual({ name, namespace: "default", labels: d.metadata.labels, ownerReferences: d.metadata.ownerReferences });
      expect(s!.spec).toEqual({ type: "ClusterIP", ports: [{ port: 8080, protocol: "TCP", targetPort: 8080 }], selector: d.spec.selector.matchLabels });
      expect(JSON.stringify([d, s])).not.toContain(seedToken(fixture));
    });
  }
});

describe("renderEntanglement: options and edge cases", () => {
  it("image override, pull policy, env after the token, resources, integer port", () => {
    const { s, c } = render(
      cr("inbound-entanglement-cluster-b", {
        port: 9000,
        image: "mine/agent:2",
        env: [{ name: "ENTANGLE_LOG_LEVEL", value: "debug" }],
        resources: { limits: { memory: "1Gi" } },
      }),
      { ...opts, imagePullPolicy: "Always" },
    );
    expect(c.image).toBe("mine/agent:2");
    expect(c.imagePullPolicy).toBe("Always");
    expect(c.env.map((e: Any) => e.name)).toEqual(["ENTANGLE_NETWORK_TOKEN", "ENTANGLE_LOG_LEVEL", "ENTANGLE_POD_IP"]);
    expect(c.resources).toEqual({ limits: { memory: "1Gi" } });
    expect(c.args).toContain("0.0.0.0:9000");
    expect(s!.spec.ports[0].targetPort).toBe(9000);
  });

  it("the module's bootstrap list and public-list guard reach the agent (issue 9)", () => {
    const { c } = render(cr("outbound-entanglement"), { ...opts, bootstrap: ["none"], forbidPublicBootstrap: true });
    expect(c.args.slice(-2)).toEqual(["--bootstrap", "none"]);
    expect(c.env).toContainEqual({ name: "ENTANGLE_FORBID_PUBLIC_BOOTSTRAP", value: "1" });
    const plain = render(cr("outbound-entanglement")).c;
    expect(plain.args).not.toContain("--bootstrap");
    expect(plain.env.map((e: Any) => e.name)).not.toContain("ENTANGLE_FORBID_PUBLIC_BOOTSTRAP");
  });

  it("no peers, no --peer; no uid, no ownerReferences", () => {
    const e = cr("outbound-entanglement");
    delete e.metadata!.uid;
    const { d, s, c } = render(e, { image: "x", peers: [] });
    expect(c.args).not.toContain("--peer");
    expect(d.metadata.ownerReferences).toBeUndefined();
    expect(s).toBeUndefined();
  });

  it("the health port moves off the service port and can be configured", () => {
    expect(render(cr("inbound-entanglement", { port: "8089" })).c.args).toEqual(
      expect.arrayContaining(["--listen", "0.0.0.0:8089", "--health-listen", "[$(ENTANGLE_POD_IP)]:8090"]),
    );
    const { c } = render(cr("outbound-entanglement"), { ...opts, healthPort: 9100 });
    expect(c.args).toContain("[$(ENTANGLE_POD_IP)]:9100");
    expect(c.livenessProbe.httpGet.port).toBe(9100);
  });

  it("outbound defaults to 127.0.0.1; IPv6 hosts are bracketed; a non-loopback inbound host is kept", () => {
    expect(render(cr("outbound-entanglement", { host: undefined })).c.args).toContain("127.0.0.1:80");
    expect(render(cr("outbound-entanglement", { host: "fd00::1" })).c.args).toContain("[fd00::1]:80");
    expect(render(cr("inbound-entanglement", { host: "::1" })).c.args).toContain("[::]:8080");
    expect(render(cr("inbound-entanglement", { host: "localhost" })).c.args).toContain("0.0.0.0:8080");
    expect(render(cr("inbound-entanglement", { host: "10.1.2.3", hostNetwork: true })).c.args).toContain("10.1.2.3:8080");
  });

  it("Service: selector always the agent's, several ports get names, targetPort kept, ports default", () => {
    const { d, s } = render(
      cr("inbound-entanglement", {
        serviceSpec: {
          type: "NodePort",
          selector: { app: "other" },
          ports: [
            { port: 80, targetPort: 8080 },
            { name: "alt", port: 81 },
          ],
        },
      }),
    );
    expect(s!.spec.type).toBe("NodePort");
    expect(s!.spec.selector).toEqual(d.spec.selector.matchLabels);
    expect(s!.spec.ports).toEqual([
      { name: "port-0", port: 80, targetPort: 8080 },
      { name: "alt", port: 81, targetPort: 8080 },
    ]);
    expect(render(cr("inbound-entanglement", { serviceSpec: undefined })).s!.spec).toEqual({
      ports: [{ port: 8080, protocol: "TCP", targetPort: 8080 }],
      selector: d.spec.selector.matchLabels,
    });
  });

  it("inbound on the host network keeps the host given: 0.0.0.0 there would publish the service on the node's addresses", () => {
    const { c } = render(cr("inbound-entanglement", { hostNetwork: true }));
    expect(c.args.slice(0, 6)).toEqual(["agent", "connect", "--service", "foo2", "--listen", "127.0.0.1:8080"]);
    expect(render(cr("inbound-entanglement", { hostNetwork: true, host: "::1" })).c.args[5]).toBe("[::1]:8080");
    expect(render(cr("inbound-entanglement", { hostNetwork: true, host: "10.0.0.7" })).c.args[5]).toBe("10.0.0.7:8080");
  });

  it("semantic errors are returned, not thrown", () => {
    for (const [patch, text] of [
      [{ port: "abc" }, "spec.port"],
      [{ port: 70000 }, "spec.port"],
      [{ port: undefined }, "spec.port"],
      [{ serviceUUID: " " }, "spec.serviceUUID"],
      [{ secretRef: undefined }, "spec.secretRef"],
      [{ host: "a b" }, "spec.host"],
      [{ secretRef: "My_Secret" }, "spec.secretRef"],
      // the token comes from the Secret only
      [{ env: [{ name: "ENTANGLE_NETWORK_TOKEN", value: "entangle1.x" }] }, "spec.env"],
      [{ env: [{ name: "EDGEVPNTOKEN", value: "x" }] }, "spec.env"],
    ] as const) {
      const r = renderEntanglement(cr("outbound-entanglement", patch), opts);
      expect(r).toMatchObject({ ok: false, reason: "InvalidSpec" });
      if (!r.ok) expect(r.message).toContain(text);
    }
    expect(renderEntanglement({ metadata: { name: "x", namespace: "default" } } as Entanglement, opts)).toMatchObject({ ok: false, reason: "InvalidSpec" });
  });
});

describe("names", () => {
  it("stay within 63 characters, stable and distinct", () => {
    const long = "x".repeat(80);
    expect(objectName("entangle-", "test")).toBe("entangle-test");
    expect(objectName("entangle-", long)).toHaveLength(63);
    expect(objectName("entangle-", long)).toBe(objectName("entangle-", long));
    expect(objectName("entangle-", long)).not.toBe(objectName("entangle-", long + "y"));
    expect(objectName("", `${"a".repeat(53)}.${"b".repeat(20)}`)).toMatch(/^a{53}-[0-9a-f]{8}$/); // no "-." or ".-"
    const { d, s } = render({ ...cr("inbound-entanglement"), metadata: { name: long, namespace: "default", uid: "u" } } as Entanglement);
    for (const v of [d.metadata.name, s!.metadata.name, ...Object.values(d.spec.template.metadata.labels)])
      expect((v as string).length).toBeLessThanOrEqual(63);
  });

  it("Service names are DNS-1035 labels even when the CR name is not", () => {
    expect(serviceName("test3")).toBe("test3");
    const dotted = serviceName("a.b");
    expect(dotted).toMatch(/^a-b-[0-9a-f]{8}$/);
    expect(dotted).not.toBe(serviceName("a-b"));
    expect(serviceName("9lives")).toMatch(/^e-9lives-[0-9a-f]{8}$/);
    for (const n of ["a.b", "9lives", "z".repeat(200), "a".repeat(63)]) expect(serviceName(n)).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
  });
});
