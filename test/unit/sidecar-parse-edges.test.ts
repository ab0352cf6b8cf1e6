// lib/render/sidecar.ts edges the mutation run found untested: the exact words of every refusal,
// values trimmed, env names anchored at both ends, the optional settings not called unknown,
// pods without metadata or containers, and the agent container's log level not set twice.
import { describe, expect, it } from "vitest";
import { agentContainer, LOG_LEVEL_ENV, LOG_LEVELS, type AgentSpec } from "../../lib/render/agent.ts";
import { alreadyInjected, notInjectedReason, parseSidecarRequest, type PodLike, type SidecarParse } from "../../lib/render/sidecar.ts";

const P = "entanglement.kairos.io/";
const L = (rest: Record<string, string>) => Object.fromEntries(Object.entries(rest).map(([k, v]) => [P + k, v]));
const basic = { name: "tok", service: "svc", target_port: "8080" };
const parse = (labels: Record<string, string>): SidecarParse => parseSidecarRequest({ metadata: { labels: L(labels) } });
const message = (labels: Record<string, string>): string => {
  const p = parse(labels);
  if (p.kind !== "incomplete") throw new Error(`not refused: ${p.kind}`);
  return p.message;
};

describe("parseSidecarRequest: the words of each refusal", () => {
  it.each([
    [{ target_port: "0" }, `${P}target_port must be a number from 1 to 65535, got "0"`],
    [{ host: "not a host!" }, `${P}host must be a host name or an IP address, got "not a host!"`],
    [{ health_port: "x" }, `${P}health_port must be a number from 1 to 65535 other than target_port, got "x"`],
    [{ health_port: "8080" }, `${P}health_port must be a number from 1 to 65535 other than target_port, got "8080"`],
    [{ "env.ENTANGLE_NETWORK_TOKEN": "x" }, `${P}env.ENTANGLE_NETWORK_TOKEN would replace the network token, which comes from the Secret only, got "x"`],
    [{ "env.A=B": "x" }, `${P}env.A=B does not name a valid environment variable, got "x"`],
    [{ "env.A B": "x" }, `${P}env.A B does not name a valid environment variable, got "x"`],
    [{ log_level: "loud" }, `${P}log_level must be one of ${LOG_LEVELS.join(", ")}, got "loud"`],
    [{ nethost: "yes" }, `${P}nethost must be "true" or "false", got "yes"`],
  ])("%o", (extra, problem) => {
    expect(message({ ...basic, ...extra })).toBe(`entangle sidecar not injected: ${problem}`);
  });

  it("missing settings are listed, comma-separated, before the problems; no 'missing' when none is", () => {
    expect(message({ target_port: "0" })).toBe(
      `entangle sidecar not injected: missing ${P}name, ${P}service; ${P}target_port must be a number from 1 to 65535, got "0"`,
    );
    expect(message({ ...basic, nethost: "yes" })).not.toContain("missing");
  });

  it("log levels are listed comma-separated", () => {
    expect(LOG_LEVELS.length).toBeGreaterThan(1);
    expect(message({ ...basic, log_level: "loud" })).toContain(LOG_LEVELS.slice(0, 2).join(", "));
  });
});

describe("parseSidecarRequest: what is accepted", () => {
  it("values are trimmed; host, health_port, env.* and the other optional settings are no unknown settings", () => {
    const p = parse({
      name: " tok ",
      service: " svc ",
      target_port: " 8080 ",
      host: "10.0.0.9",
      health_port: "9999",
      direction: "connect",
      nethost: "false",
      log_level: "info",
      "env.FOO": "bar",
    });
    expect(p.kind).toBe("ok");
    if (p.kind !== "ok") return;
    expect(p.request).toMatchObject({ secret: "tok", service: "svc", address: "10.0.0.9:8080", healthPort: 9999, env: [{ name: "FOO", value: "bar" }] });
    expect(p.warnings).toEqual([]);
  });
});

describe("pods the API server may hand over half-filled", () => {
  it("a pod without metadata is not injected; one without the injected mark but with our container is a clash only when it asks for the sidecar", () => {
    expect(alreadyInjected({ spec: { containers: [] } } as PodLike)).toBe(false);
    const squatter = { metadata: {}, spec: { containers: [{ name: "entangle-agent" }] } } as PodLike;
    expect(notInjectedReason(squatter, { kind: "none" })).toBeUndefined();
    expect(notInjectedReason(squatter, parse(basic))).toBe("entangle sidecar not injected: the pod already has a container named entangle-agent");
  });
});

describe("agentContainer: the log level", () => {
  const spec: AgentSpec = { mode: "expose", service: "web", address: "10.0.0.1:80", secretRef: "tok", healthPort: 8089, readiness: true };
  it("the module's level is not added when spec.env sets its own", () => {
    const env = agentContainer({ ...spec, env: [{ name: LOG_LEVEL_ENV, value: "debug" }] }, { image: "i", peers: [], logLevel: "warn" }).env ?? [];
    expect(env.filter((e) => e.name === LOG_LEVEL_ENV)).toEqual([{ name: LOG_LEVEL_ENV, value: "debug" }]);
  });
});
