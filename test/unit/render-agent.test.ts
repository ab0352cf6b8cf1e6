// lib/render/agent.ts on its own: the whole agent container, and the small helpers the
// renderers share (health port, hosts, Secret names, loopback). Pinned in full so a changed
// flag, probe, env entry or security setting fails here rather than in a cluster.
import { describe, expect, it } from "vitest";
import {
  RESERVED_ENV,
  agentContainer,
  healthListen,
  isLoopback,
  normalizeHost,
  pickHealthPort,
  secretNameProblem,
  type AgentSpec,
} from "../../lib/render/agent.ts";

const spec: AgentSpec = { mode: "expose", service: "web", address: "10.0.0.1:80", secretRef: "tok", healthPort: 8089, readiness: true };
const probe = (path: string, port = 8089) => ({ httpGet: { path, port }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 });

describe("agentContainer", () => {
  it("the whole container of an exposing agent", () => {
    expect(agentContainer(spec, { image: "img:1", peers: [] })).toEqual({
      name: "entangle-agent",
      image: "img:1",
      command: ["entangle"],
      args: ["agent", "expose", "--service", "web", "--target", "10.0.0.1:80", "--health-listen", "[$(ENTANGLE_POD_IP)]:8089"],
      env: [
        { name: "ENTANGLE_NETWORK_TOKEN", valueFrom: { secretKeyRef: { name: "tok", key: "network_token" } } },
        { name: "ENTANGLE_POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      ],
      ports: [{ name: "entangle-health", containerPort: 8089, protocol: "TCP" }],
      livenessProbe: probe("/healthz"),
      readinessProbe: probe("/readyz"),
      resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
      // pinned value by value in render-entanglement.test.ts (the same container, rendered for a Deployment)
      securityContext: expect.objectContaining({ runAsNonRoot: true, capabilities: { drop: ["ALL"] } }),
      terminationMessagePath: "/dev/termination-log",
      terminationMessagePolicy: "FallbackToLogsOnError",
    });
  });

  it("a connecting sidecar: --listen, peers, bootstrap, pull policy, user env and resources, no readiness", () => {
    const c = agentContainer(
      {
        ...spec,
        mode: "connect",
        address: "127.0.0.1:8080",
        healthPort: 9000,
        readiness: false,
        env: [{ name: "A", value: "1" }],
        resources: { limits: { cpu: "1" } },
      },
      { image: "i", peers: ["p1:1", "p2:2"], bootstrap: ["none"], imagePullPolicy: "Never", forbidPublicBootstrap: true },
    );
    expect(c.args).toEqual([
      "agent",
      "connect",
      "--service",
      "web",
      "--listen",
      "127.0.0.1:8080",
      "--health-listen",
      "[$(ENTANGLE_POD_IP)]:9000",
      "--peer",
      "p1:1",
      "--peer",
      "p2:2",
      "--bootstrap",
      "none",
    ]);
    expect(c.imagePullPolicy).toBe("Never");
    expect(c.env!.map((e) => e.name)).toEqual(["ENTANGLE_NETWORK_TOKEN", "A", "ENTANGLE_FORBID_PUBLIC_BOOTSTRAP", "ENTANGLE_POD_IP"]);
    expect(c.env![2]).toEqual({ name: "ENTANGLE_FORBID_PUBLIC_BOOTSTRAP", value: "1" });
    expect(c.readinessProbe).toBeUndefined();
    expect(c.livenessProbe).toEqual(probe("/healthz", 9000));
    expect(c.ports).toEqual([{ name: "entangle-health", containerPort: 9000, protocol: "TCP" }]);
    expect(c.resources).toEqual({ limits: { cpu: "1" } });
    expect("imagePullPolicy" in agentContainer(spec, { image: "i", peers: [] })).toBe(false);
  });

  it("returns copies: editing one render leaves the next alone", () => {
    const a = agentContainer(spec, { image: "i", peers: [] });
    (a.securityContext as { capabilities: { drop: string[] } }).capabilities.drop.push("X");
    (a.resources as { requests: { cpu: string } }).requests.cpu = "9";
    const b = agentContainer(spec, { image: "i", peers: [] });
    expect(b.securityContext!.capabilities!.drop).toEqual(["ALL"]);
    expect(b.resources!.requests).toEqual({ cpu: "50m", memory: "128Mi" });
  });

  it("health address and the reserved env names", () => {
    expect(healthListen(1)).toBe("[$(ENTANGLE_POD_IP)]:1");
    expect(RESERVED_ENV).toEqual(["ENTANGLE_NETWORK_TOKEN", "EDGEVPNTOKEN"]);
  });
});

describe("pickHealthPort", () => {
  it("the preferred port unless taken, then the next free one, wrapping to 1024", () => {
    expect(pickHealthPort([])).toBe(8089);
    expect(pickHealthPort([80, 443])).toBe(8089);
    expect(pickHealthPort([8089, 8090, 8092])).toBe(8091);
    expect(pickHealthPort([], 9000)).toBe(9000);
    expect(pickHealthPort([65534, 65535], 65534)).toBe(1024);
    expect(pickHealthPort([65535, 1024], 65535)).toBe(1025);
  });
});

describe("normalizeHost", () => {
  it("DNS names, IPv4 and IPv6 (brackets dropped), trimmed", () => {
    expect(normalizeHost(" svc.ns.svc.cluster.local ")).toBe("svc.ns.svc.cluster.local");
    expect(normalizeHost("10.0.0.1")).toBe("10.0.0.1");
    expect(normalizeHost("[fd00::1]")).toBe("fd00::1");
    expect(normalizeHost("fd00::1")).toBe("fd00::1");
    expect(normalizeHost("a")).toBe("a");
    expect(normalizeHost("a".repeat(253))).toBe("a".repeat(253));
    expect(normalizeHost("A_b-c.D")).toBe("A_b-c.D");
  });
  it.each(["", "-a", ".a", "a b", "a/b", "a:1", "[a]x", "x[fd00::1]", "a".repeat(254), "a\nb", "[10.0.0.1"])("refuses %j", (v) => {
    expect(normalizeHost(v)).toBeUndefined();
  });
});

describe("secretNameProblem", () => {
  const msg = "must be a Secret name (lowercase letters, digits, '-' and '.', at most 253 characters)";
  it("DNS-1123 subdomains up to 253 characters", () => {
    for (const ok of ["a", "tok", "a.b-c", "0a", "a".repeat(253)]) expect(secretNameProblem(ok)).toBeUndefined();
    for (const bad of ["", "A", "-a", "a-", "a_b", "a b", "xa.", " a", "a".repeat(254)]) expect(secretNameProblem(bad)).toBe(msg);
  });
});

describe("isLoopback", () => {
  it("localhost, ::1 and 127/8, in any case", () => {
    for (const h of ["localhost", "LocalHost", "::1", "127.0.0.1", "127.1.2.3"]) expect(isLoopback(h)).toBe(true);
    for (const h of ["10.0.0.1", "127.example", "localhost.example", "::2", "0.0.0.0", "1.127.0.0"]) expect(isLoopback(h)).toBe(false);
  });
});
