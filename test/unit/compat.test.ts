// The original operators' remaining fields (issue 14): spec.serviceRef, the no-finalize
// annotation, status.executed, nethost "false", the agents' log level.
import { describe, expect, it } from "vitest";
import { resolveServiceRef, serviceDnsName } from "../../lib/render/service-ref.ts";
import { renderEntanglement } from "../../lib/render/entanglement.ts";
import { agentContainer, normalizeLogLevel } from "../../lib/render/agent.ts";
import { parseSidecarRequest, renderSidecar, type PodLike } from "../../lib/render/sidecar.ts";
import { parseModuleConfig } from "../../lib/config.ts";
import { executedNow, keepsRemoteObjects } from "../../lib/remote/compat.ts";
import { entanglementCrd, manifestsCrd } from "../../lib/crds/definitions.ts";
import type { Entanglement } from "../../lib/crds/index.ts";

type Any = Record<string, any>;
const opts = { image: "example/entangle:1", peers: [] };
const svc = (ports: number[], extra: Any = {}) => ({ spec: { type: "ClusterIP", clusterIP: "10.96.0.9", ports: ports.map((port) => ({ port })), ...extra } });
const ref = (port?: string | number) => ({ name: "web", namespace: "shop", port });

function outbound(spec: Any): Entanglement {
  return { metadata: { name: "e", namespace: "shop", uid: "u" }, spec: { serviceUUID: "foo", secretRef: "s", ...spec } } as Entanglement;
}

describe("spec.serviceRef", () => {
  it("names the Service with its namespace (the original left the namespace out)", () => {
    expect(serviceDnsName("web", "shop")).toBe("web.shop.svc.cluster.local");
    expect(resolveServiceRef(ref(), svc([8080]))).toEqual({ ok: true, host: "web.shop.svc.cluster.local", port: 8080 });
  });

  it("spec.port chooses among the Service's ports, and must be one of them on a cluster IP", () => {
    expect(resolveServiceRef(ref("81"), svc([80, 81]))).toMatchObject({ ok: true, port: 81 });
    expect(resolveServiceRef(ref(443), svc([80]))).toEqual({
      ok: false,
      reason: "ServicePortNotFound",
      message: "spec.serviceRef: Service shop/web has no port 443 (it serves 80); set spec.port to one of them",
    });
    // headless and ExternalName Services pass any port through
    expect(resolveServiceRef(ref(5432), svc([], { clusterIP: "None" }))).toMatchObject({ ok: true, port: 5432 });
    expect(resolveServiceRef(ref(5432), { spec: { type: "ExternalName" } })).toMatchObject({ ok: true, port: 5432 });
  });

  it("a missing Service or an ambiguous port is named", () => {
    expect(resolveServiceRef(ref(), undefined)).toEqual({
      ok: false,
      reason: "ServiceNotFound",
      message: "spec.serviceRef: Service shop/web not found; waiting for it to be created",
    });
    const two = {
      spec: {
        ports: [
          { name: "http", port: 80 },
          { name: "https", port: 443 },
        ],
      },
    };
    expect(resolveServiceRef(ref(), two)).toEqual({
      ok: false,
      reason: "ServicePortAmbiguous",
      message: "spec.serviceRef: Service shop/web has 2 ports (80 (http), 443 (https)); set spec.port to the one to use",
    });
    expect(resolveServiceRef(ref(), svc([], { clusterIP: "None" }))).toMatchObject({
      reason: "ServicePortAmbiguous",
      message: expect.stringContaining("declares no port"),
    });
  });

  it("the renderer targets the resolved Service instead of spec.host", () => {
    const r = renderEntanglement(outbound({ serviceRef: "web", host: "10.1.1.1" }), opts, resolveServiceRef(ref(), svc([8080])));
    if (!r.ok) throw new Error(r.message);
    const args = (r.deployment as Any).spec.template.spec.containers[0].args as string[];
    expect(args.slice(0, 6)).toEqual(["agent", "expose", "--service", "foo", "--target", "web.shop.svc.cluster.local:8080"]);
    expect(r.service).toBeUndefined();
  });

  it("the renderer reports an unresolved Service after the rest of the spec is valid", () => {
    expect(renderEntanglement(outbound({ serviceRef: "web" }), opts, resolveServiceRef(ref(), undefined))).toMatchObject({
      ok: false,
      reason: "ServiceNotFound",
    });
    // a spec error is said first: it needs fixing whether or not the Service comes
    expect(renderEntanglement(outbound({ serviceRef: "web", secretRef: "Bad_Name" }), opts, resolveServiceRef(ref(), undefined))).toMatchObject({
      reason: "InvalidSpec",
    });
    expect(renderEntanglement(outbound({ serviceRef: "web", port: "http" }), opts, resolveServiceRef(ref(), svc([80])))).toMatchObject({
      reason: "InvalidSpec",
      message: 'spec.port must be a number from 1 to 65535, got "http"',
    });
    expect(renderEntanglement(outbound({ serviceRef: "web", inbound: true, port: 80 }), opts, undefined)).toMatchObject({
      reason: "InvalidSpec",
      message: expect.stringContaining("outbound Entanglements only"),
    });
    expect(renderEntanglement(outbound({ serviceRef: "web" }), opts, undefined)).toMatchObject({ reason: "InvalidSpec" });
    // without serviceRef, a resolved target is ignored and spec.port stays required
    expect(renderEntanglement(outbound({}), opts, resolveServiceRef(ref(), svc([80])))).toMatchObject({ reason: "InvalidSpec" });
  });

  it("the CRD lets port go only with serviceRef, and refuses serviceRef on inbound", () => {
    const spec = (entanglementCrd.spec.versions[0].schema.openAPIV3Schema as Any).properties.spec;
    expect(spec.required).toEqual(["serviceUUID", "secretRef"]);
    expect(spec["x-kubernetes-validations"].map((v: Any) => v.rule)).toEqual([
      "has(self.port) || has(self.serviceRef)",
      "!has(self.serviceRef) || !has(self.inbound) || !self.inbound",
    ]);
    expect(new RegExp(spec.properties.serviceRef.pattern).test("web-1")).toBe(true);
    expect(new RegExp(spec.properties.serviceRef.pattern).test("web.shop")).toBe(false);
  });
});

describe("Manifests: the original's annotation and status field", () => {
  it('no-finalize, whatever its value, orphans like orphan: "true"', () => {
    expect(keepsRemoteObjects({ "entanglement-proxy.kairos.io/no-finalize": "" })).toBe(true);
    expect(keepsRemoteObjects({ "entanglement-proxy.kairos.io/no-finalize": "false" })).toBe(true);
    expect(keepsRemoteObjects({ "entangle-proxy.kairos.io/orphan": "true" })).toBe(true);
    expect(keepsRemoteObjects({ "entangle-proxy.kairos.io/orphan": "false" })).toBe(false);
    expect(keepsRemoteObjects({ "entangle-proxy.kairos.io/no-finalize": "" })).toBe(false); // our group, not the original's
    expect(keepsRemoteObjects(undefined)).toBe(false);
  });

  it("executed: true once everything applied; kept while the remote cannot be asked; false on a new spec or a failure", () => {
    const ok = { status: "True", reason: "Applied" };
    expect(executedNow(undefined, 1, ok)).toBe(true);
    expect(executedNow({ executed: true, observedGeneration: 1 }, 1, { status: "False", reason: "RemoteUnreachable" })).toBe(true);
    expect(executedNow({ executed: true, observedGeneration: 1 }, 1, { status: "False", reason: "SecretNotFound" })).toBe(true);
    expect(executedNow({ executed: true, observedGeneration: 1 }, 2, { status: "False", reason: "RemoteUnreachable" })).toBe(false);
    expect(executedNow({ executed: true, observedGeneration: 1 }, 1, { status: "False", reason: "ApplyFailed" })).toBe(false);
    expect(executedNow({ executed: true, observedGeneration: 1 }, 1, { status: "False", reason: "OwnershipConflict" })).toBe(false);
    expect(executedNow({ executed: false, observedGeneration: 1 }, 1, { status: "False", reason: "RemoteUnreachable" })).toBe(false);
    const status = (manifestsCrd.spec.versions[0].schema.openAPIV3Schema as Any).properties.status.properties;
    expect(status.executed.type).toBe("boolean");
  });
});

describe("sidecar: nethost and log_level", () => {
  const pod = (extra: Record<string, string>): PodLike => ({
    metadata: {
      labels: { "entanglement.kairos.io/name": "s", "entanglement.kairos.io/service": "svc", "entanglement.kairos.io/target_port": "9090" },
      annotations: Object.fromEntries(Object.entries(extra).map(([k, v]) => [`entanglement.kairos.io/${k}`, v])),
    },
  });
  const request = (extra: Record<string, string>) => {
    const p = parseSidecarRequest(pod(extra));
    if (p.kind !== "ok") throw new Error(JSON.stringify(p));
    return p;
  };

  it('nethost "false" is an accepted explicit value (the default: no host network)', () => {
    expect(request({ nethost: "false" })).toMatchObject({ request: { hostNetwork: false }, warnings: [] });
    expect(request({}).request.hostNetwork).toBe(false);
    expect(request({ nethost: "True" }).request.hostNetwork).toBe(true);
  });

  it("log_level sets the sidecar's ENTANGLE_LOG_LEVEL over the module's; an unknown level is refused", () => {
    const p = request({ log_level: "Warning" });
    expect(p).toMatchObject({ request: { logLevel: "warn" }, warnings: [] });
    const env = renderSidecar(p.request, { ...opts, logLevel: "error" }).env!;
    expect(env.filter((e) => e.name === "ENTANGLE_LOG_LEVEL")).toEqual([{ name: "ENTANGLE_LOG_LEVEL", value: "warn" }]);
    const byModule = renderSidecar(request({}).request, { ...opts, logLevel: "error" }).env!;
    expect(byModule.filter((e) => e.name === "ENTANGLE_LOG_LEVEL")).toEqual([{ name: "ENTANGLE_LOG_LEVEL", value: "error" }]);
    expect(parseSidecarRequest(pod({ log_level: "loud" }))).toMatchObject({ kind: "incomplete", invalid: ["entanglement.kairos.io/log_level"] });
  });
});

describe("agents' log level", () => {
  it("accepts pino's levels, case-insensitive, and warning for warn", () => {
    expect(["trace", "DEBUG", " info ", "warn", "warning", "error", "fatal", "silent"].map(normalizeLogLevel)).toEqual([
      "trace",
      "debug",
      "info",
      "warn",
      "warn",
      "error",
      "fatal",
      "silent",
    ]);
    expect([undefined, "", "verbose", "dpanic"].map(normalizeLogLevel)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it("ENTANGLE_AGENT_LOG_LEVEL: the module's setting, dropped with a problem when unknown", () => {
    expect(parseModuleConfig({ ENTANGLE_AGENT_LOG_LEVEL: "Debug" })).toMatchObject({ config: { logLevel: "debug" }, problems: [] });
    expect(parseModuleConfig({}).config.logLevel).toBeUndefined();
    const bad = parseModuleConfig({ ENTANGLE_AGENT_LOG_LEVEL: "loud" });
    expect(bad.config.logLevel).toBeUndefined();
    expect(bad.problems).toEqual(['ENTANGLE_AGENT_LOG_LEVEL "loud" is not one of trace, debug, info, warn, error, fatal, silent: ignored']);
  });

  it("reaches every agent as ENTANGLE_LOG_LEVEL, unless its own env sets one; nothing when unset", () => {
    const spec = { mode: "expose" as const, service: "foo", address: "127.0.0.1:80", secretRef: "s", healthPort: 8089, readiness: true };
    const names = (c: { env?: { name: string; value?: string }[] }) => c.env!.map((e) => `${e.name}=${e.value ?? ""}`);
    expect(names(agentContainer(spec, { ...opts, logLevel: "debug" }))).toEqual(["ENTANGLE_NETWORK_TOKEN=", "ENTANGLE_LOG_LEVEL=debug", "ENTANGLE_POD_IP="]);
    expect(names(agentContainer({ ...spec, env: [{ name: "ENTANGLE_LOG_LEVEL", value: "trace" }] }, { ...opts, logLevel: "debug" }))).toEqual([
      "ENTANGLE_NETWORK_TOKEN=",
      "ENTANGLE_LOG_LEVEL=trace",
      "ENTANGLE_POD_IP=",
    ]);
    expect(names(agentContainer(spec, opts))).toEqual(["ENTANGLE_NETWORK_TOKEN=", "ENTANGLE_POD_IP="]);
    const r = renderEntanglement(outbound({ port: 80 }), { ...opts, logLevel: "error" });
    if (!r.ok) throw new Error(r.message);
    expect((r.deployment as Any).spec.template.spec.containers[0].env[1]).toEqual({ name: "ENTANGLE_LOG_LEVEL", value: "error" });
  });
});
