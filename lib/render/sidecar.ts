// Sidecar injection from pod labels/annotations, as in the original entangle:
//   entanglement.kairos.io/name         Secret holding network_token
//   entanglement.kairos.io/service      service on the network
//   entanglement.kairos.io/target_port  port in the pod
//   entanglement.kairos.io/direction    "entangle" = expose host:target_port; else connect,
//                                       listening on host:target_port inside the pod
//   entanglement.kairos.io/host         default 127.0.0.1
//   entanglement.kairos.io/nethost      "true" = hostNetwork
//   entanglement.kairos.io/env.NAME     extra env for the agent
// Annotations win over labels (label values cannot hold every character).
import type { EnvVar } from "../crds/entanglement.ts";
import { AGENT_CONTAINER, DEFAULT_HEALTH_PORT, agentContainer, formatAddress, healthPortAvoiding, parsePort, type AgentOptions } from "./agent.ts";

export const PREFIX = "entanglement.kairos.io/";
export const INJECTED_ANNOTATION = `${PREFIX}injected`;
const REQUIRED = ["name", "service", "target_port"] as const;

export interface SidecarRequest {
  secret: string;
  service: string;
  mode: "expose" | "connect";
  address: string;
  hostNetwork: boolean;
  healthPort: number;
  env: EnvVar[];
}

export type SidecarParse = { kind: "none" } | { kind: "incomplete"; message: string } | { kind: "ok"; request: SidecarRequest };

interface PodLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: Array<{ name: string }>; initContainers?: Array<{ name: string }>; hostNetwork?: boolean };
}

function settings(pod: PodLike): Map<string, string> {
  const out = new Map<string, string>();
  for (const source of [pod.metadata?.labels, pod.metadata?.annotations]) {
    for (const [k, v] of Object.entries(source ?? {})) if (k.startsWith(PREFIX)) out.set(k.slice(PREFIX.length), v);
  }
  out.delete("injected");
  return out;
}

export function parseSidecarRequest(pod: PodLike): SidecarParse {
  const s = settings(pod);
  if (s.size === 0) return { kind: "none" };
  const missing = REQUIRED.filter((k) => !s.get(k)?.trim());
  if (missing.length > 0) {
    return { kind: "incomplete", message: `entangle sidecar not injected: missing ${missing.map((k) => PREFIX + k).join(", ")}` };
  }
  const port = parsePort(s.get("target_port"));
  if (port === undefined) return { kind: "incomplete", message: `entangle sidecar not injected: ${PREFIX}target_port must be 1-65535, got "${s.get("target_port")}"` };
  let healthPort = healthPortAvoiding(port);
  if (s.has("health_port")) {
    const hp = parsePort(s.get("health_port"));
    if (hp === undefined || hp === port) return { kind: "incomplete", message: `entangle sidecar not injected: ${PREFIX}health_port must be 1-65535 and differ from target_port` };
    healthPort = hp;
  }
  const env: EnvVar[] = [];
  for (const [k, v] of s) if (k.startsWith("env.") && k.length > 4) env.push({ name: k.slice(4), value: v });
  return {
    kind: "ok",
    request: {
      secret: s.get("name")!.trim(),
      service: s.get("service")!.trim(),
      mode: s.get("direction") === "entangle" ? "expose" : "connect",
      address: formatAddress(s.get("host")?.trim() || "127.0.0.1", port),
      hostNetwork: s.get("nethost") === "true",
      healthPort,
      env,
    },
  };
}

export function alreadyInjected(pod: PodLike): boolean {
  const names = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
  return names.includes(AGENT_CONTAINER) || pod.metadata?.annotations?.[INJECTED_ANNOTATION] !== undefined;
}

/**
 * The agent as a native sidecar: an init container with restartPolicy Always starts before
 * the app and is stopped after it, so a Job still completes when its main container exits.
 */
export function renderSidecar(request: SidecarRequest, opts: AgentOptions): Record<string, unknown> {
  const container = agentContainer(
    { mode: request.mode, service: request.service, address: request.address, secretRef: request.secret, healthPort: request.healthPort, env: request.env, readiness: false },
    opts,
  );
  return { ...container, restartPolicy: "Always" };
}

export { DEFAULT_HEALTH_PORT };
