// Sidecar injection from pod labels/annotations, as in the original entangle:
//   entanglement.kairos.io/name         Secret holding network_token
//   entanglement.kairos.io/service      service on the network
//   entanglement.kairos.io/target_port  port in the pod
//   entanglement.kairos.io/direction    "entangle" = expose host:target_port; else connect,
//                                       listening on host:target_port inside the pod
//   entanglement.kairos.io/host         default 127.0.0.1
//   entanglement.kairos.io/nethost      "true" = hostNetwork; "false" (the default) = the pod's own
//                                       network (the original's default was the host network)
//   entanglement.kairos.io/log_level    the agent's log level (default: the module's ENTANGLE_AGENT_LOG_LEVEL)
//   entanglement.kairos.io/env.NAME     extra env for the agent
//   entanglement.kairos.io/health_port  agent health port (default 8089, moved off ports in use)
// Annotations win over labels (label values cannot hold every character).
import type { EnvVar } from "../crds/entanglement.ts";
import { serviceNameProblem } from "../p2p/service-name.ts";
import {
  AGENT_CONTAINER,
  LOG_LEVELS,
  RESERVED_ENV,
  agentContainer,
  normalizeHost,
  normalizeLogLevel,
  pickHealthPort,
  secretNameProblem,
  type AgentOptions,
  type Container,
} from "./agent.ts";
import { formatHostPort, portNumber } from "../hostport.ts";

export const PREFIX = "entanglement.kairos.io/";
export const INJECTED_ANNOTATION = `${PREFIX}injected`;
/** Set by the webhook on a pod that asks for the sidecar but does not get it: why (the guard reads it). */
export const NOT_INJECTED_ANNOTATION = `${PREFIX}not-injected`;
export const REQUIRED = ["name", "service", "target_port"] as const;
const OPTIONAL = ["direction", "host", "nethost", "health_port", "log_level"];

export interface SidecarRequest {
  secret: string;
  service: string;
  mode: "expose" | "connect";
  /** expose: the target HOST:PORT; connect: the listen HOST:PORT */
  address: string;
  hostNetwork: boolean;
  healthPort: number;
  env: EnvVar[];
  /** entanglement.kairos.io/log_level, normalized; unset: the module's level */
  logLevel?: string;
}

export type SidecarParse =
  | { kind: "none" }
  /** `missing`: required keys absent; `invalid`: keys present with unusable values (full keys) */
  | { kind: "incomplete"; missing: string[]; invalid: string[]; message: string }
  /** `warnings`: injected, but something looks like a mistake */
  | { kind: "ok"; request: SidecarRequest; warnings: string[] };

/** The parts of a Pod read here; a Pod from Pepr (a.Pod) fits. */
export interface PodLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: {
    containers?: Array<{ name: string; ports?: Array<{ containerPort: number }> }>;
    initContainers?: Array<{ name: string; ports?: Array<{ containerPort: number }> }>;
    hostNetwork?: boolean;
    dnsPolicy?: string;
  };
}

/** entanglement.kairos.io/* settings without the prefix; annotations override labels. */
function settings(pod: PodLike): Map<string, string> {
  const out = new Map<string, string>();
  for (const source of [pod.metadata?.labels, pod.metadata?.annotations]) {
    for (const [k, v] of Object.entries(source ?? {})) if (k.startsWith(PREFIX)) out.set(k.slice(PREFIX.length), v.trim());
  }
  // our own marks, not requests
  out.delete("injected");
  out.delete("not-injected");
  return out;
}

// Kubernetes' classic env name rule; anything else would make the API server refuse the pod.
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

export function parseSidecarRequest(pod: PodLike): SidecarParse {
  const s = settings(pod);
  if (s.size === 0) return { kind: "none" };
  const missing = REQUIRED.filter((k) => !s.get(k)).map((k) => PREFIX + k);
  const invalid: string[] = [];
  const problems: string[] = [];
  const bad = (key: string, why: string) => {
    invalid.push(PREFIX + key);
    problems.push(`${PREFIX}${key} ${why}, got ${JSON.stringify(s.get(key))}`);
  };

  const secretProblem = s.get("name") ? secretNameProblem(s.get("name")!) : undefined;
  if (secretProblem !== undefined) bad("name", secretProblem);
  const serviceProblem = s.get("service") ? serviceNameProblem(s.get("service")!) : undefined;
  if (serviceProblem !== undefined) bad("service", serviceProblem);
  const port = portNumber(s.get("target_port"));
  if (s.get("target_port") && port === undefined) bad("target_port", "must be a number from 1 to 65535");
  const host = normalizeHost(s.get("host") || "127.0.0.1");
  if (host === undefined) bad("host", "must be a host name or an IP address");
  let healthPort: number | undefined;
  if (s.has("health_port")) {
    healthPort = portNumber(s.get("health_port"));
    if (healthPort === undefined || healthPort === port) bad("health_port", "must be a number from 1 to 65535 other than target_port");
  }
  const env: EnvVar[] = [];
  for (const [k, v] of s) {
    if (!k.startsWith("env.")) continue;
    if (RESERVED_ENV.includes(k.slice(4))) bad(k, "would replace the network token, which comes from the Secret only");
    else if (ENV_NAME.test(k.slice(4))) env.push({ name: k.slice(4), value: v });
    else bad(k, "does not name a valid environment variable");
  }
  const logLevel = s.has("log_level") ? normalizeLogLevel(s.get("log_level")) : undefined;
  if (s.has("log_level") && logLevel === undefined) bad("log_level", `must be one of ${LOG_LEVELS.join(", ")}`);
  const nethost = s.get("nethost")?.toLowerCase();
  if (nethost !== undefined && nethost !== "true" && nethost !== "false") bad("nethost", 'must be "true" or "false"');

  const warnings: string[] = [];
  const direction = s.get("direction");
  // the original treats every value but "entangle" as connect: kept, but a typo is named
  if (direction && direction !== "entangle" && direction !== "connect")
    warnings.push(`${PREFIX}direction ${JSON.stringify(direction)} is neither "entangle" (expose) nor "connect": treated as connect`);
  for (const k of s.keys()) {
    if (![...REQUIRED, ...OPTIONAL].includes(k) && !k.startsWith("env.")) warnings.push(`${PREFIX}${k} is not an entangle setting: ignored`);
  }

  if (missing.length > 0 || invalid.length > 0) {
    const why = [...(missing.length > 0 ? [`missing ${missing.join(", ")}`] : []), ...problems].join("; ");
    return { kind: "incomplete", missing, invalid, message: `entangle sidecar not injected: ${why}` };
  }
  // ports the pod already declares are taken: the agent's health server must not collide
  const declared = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
  return {
    kind: "ok",
    request: {
      secret: s.get("name")!,
      service: s.get("service")!,
      mode: s.get("direction") === "entangle" ? "expose" : "connect",
      address: formatHostPort({ host: host!, port: port! }),
      hostNetwork: nethost === "true",
      healthPort: healthPort ?? pickHealthPort([port!, ...declared]),
      env,
      ...(logLevel ? { logLevel } : {}),
    },
    warnings,
  };
}

/** True when the agent is already there: injection must be idempotent (reinvocation, retries). */
export function alreadyInjected(pod: PodLike): boolean {
  const names = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
  return names.includes(AGENT_CONTAINER) || pod.metadata?.annotations?.[INJECTED_ANNOTATION] !== undefined;
}

/**
 * What `kubectl` should print when the pod is admitted (after every mutation): why nothing was
 * injected, or what looks like a mistake in what was.
 */
export function sidecarWarnings(pod: PodLike, parsed: SidecarParse): string[] {
  if (parsed.kind === "none") return [];
  const skipped = notInjectedReason(pod, parsed);
  return parsed.kind === "incomplete" ? [parsed.message] : [...parsed.warnings, ...(skipped !== undefined ? [skipped] : [])];
}

/** Why a pod that asks for the sidecar does not get it (NOT_INJECTED_ANNOTATION), or undefined. */
export function notInjectedReason(pod: PodLike, parsed: SidecarParse): string | undefined {
  if (parsed.kind === "none") return undefined;
  if (parsed.kind === "incomplete") return parsed.message;
  const clash = pod.metadata?.annotations?.[INJECTED_ANNOTATION] === undefined && alreadyInjected(pod);
  return clash ? `entangle sidecar not injected: the pod already has a container named ${AGENT_CONTAINER}` : undefined;
}

/** Value of INJECTED_ANNOTATION: what was injected, for `kubectl describe`. */
export function injectedAnnotationValue(request: SidecarRequest): string {
  return `${request.mode} ${request.service}`;
}

/**
 * The agent as a native sidecar: an init container with restartPolicy Always (Kubernetes
 * >= 1.29) starts before the app and is stopped after it, so a Job still completes when its
 * main container exits. The startup probe holds the next containers back until the agent is
 * up (in connect mode its listener is bound before the health server starts).
 */
export function renderSidecar(request: SidecarRequest, opts: AgentOptions): Container {
  const container = agentContainer(
    {
      mode: request.mode,
      service: request.service,
      address: request.address,
      secretRef: request.secret,
      healthPort: request.healthPort,
      env: request.env,
      readiness: false,
    },
    request.logLevel ? { ...opts, logLevel: request.logLevel } : opts,
  );
  return {
    ...container,
    restartPolicy: "Always",
    startupProbe: { httpGet: { path: "/healthz", port: request.healthPort }, periodSeconds: 1, failureThreshold: 60 },
  };
}

export interface SidecarPatch {
  /** the pod's new initContainers: the agent first, so later init containers can use the tunnel */
  initContainers: Container[];
  /** set pod.spec.hostNetwork to true */
  hostNetwork: boolean;
  /** set only with hostNetwork, and only where the pod does not choose its own DNS policy */
  dnsPolicy?: string;
  annotations: Record<string, string>;
}

/** Everything injection changes in a pod, as plain values the Mutate binding assigns. */
export function sidecarPatch(pod: PodLike, request: SidecarRequest, opts: AgentOptions): SidecarPatch {
  const ownDns = pod.spec?.dnsPolicy !== undefined && pod.spec.dnsPolicy !== "ClusterFirst";
  return {
    // the pod's own init containers are whole containers; PodLike only names what is read here
    initContainers: [renderSidecar(request, opts), ...((pod.spec?.initContainers ?? []) as Container[])],
    hostNetwork: request.hostNetwork,
    ...(request.hostNetwork && !ownDns ? { dnsPolicy: "ClusterFirstWithHostNet" } : {}),
    annotations: { [INJECTED_ANNOTATION]: injectedAnnotationValue(request) },
  };
}
