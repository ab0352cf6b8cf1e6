// The agent container every rendered object runs: `entangle agent <mode>` with the token from
// the user's Secret (a secretKeyRef: the value is never copied), the module's peers, probes on
// the health port and a locked-down security context.
import { isIP } from "node:net";
import type { kind } from "pepr";
import type { EnvVar } from "../crds/entanglement.ts";

export type Container = NonNullable<kind.Pod["spec"]>["containers"][number];

export const TOKEN_KEY = "network_token";
export const TOKEN_ENV = "ENTANGLE_NETWORK_TOKEN";
export const AGENT_CONTAINER = "entangle-agent";
export const DEFAULT_HEALTH_PORT = 8089;
/** the pod's IP (downward API), for the health server's address */
export const POD_IP_ENV = "ENTANGLE_POD_IP";
/** at most 15 characters, and unlikely to clash with the app's port names in a sidecar's pod */
const HEALTH_PORT_NAME = "entangle-health";

export interface AgentOptions {
  image: string;
  /** the module's ENTANGLE_PEERS: every agent dials them */
  peers: string[];
  /** Deployments: preferred health port (default 8089), moved off the service port. Sidecars
   *  take theirs from the pod (entanglement.kairos.io/health_port). */
  healthPort?: number;
  imagePullPolicy?: string;
  /** ENTANGLE_LOG_LEVEL of the agent (a LOG_LEVELS entry); unset: the agent's default, info */
  logLevel?: string;
  /** the module's ENTANGLE_BOOTSTRAP: every agent's --bootstrap */
  bootstrap?: string[];
  /** the module forbids the public bootstrap list: so do its agents */
  forbidPublicBootstrap?: boolean;
}

export interface AgentSpec {
  mode: "expose" | "connect";
  service: string;
  /** expose: the target HOST:PORT; connect: the listen HOST:PORT */
  address: string;
  secretRef: string;
  healthPort: number;
  env?: EnvVar[];
  resources?: Record<string, unknown>;
  /** readiness on /readyz (dedicated agents); sidecars only get liveness so they never hold a user pod unready */
  readiness: boolean;
}

// measured (hack/bench.sh): an idle agent holds ~120 MiB RSS, ~200 MiB at peak while moving
// 256 MiB transfers both ways; the limit leaves headroom for many concurrent streams
const DEFAULT_RESOURCES = { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } };

const SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

export function agentContainer(spec: AgentSpec, opts: AgentOptions): Container {
  const args = [
    "agent",
    spec.mode,
    "--service",
    spec.service,
    spec.mode === "expose" ? "--target" : "--listen",
    spec.address,
    "--health-listen",
    healthListen(spec.healthPort),
  ];
  for (const peer of opts.peers) args.push("--peer", peer);
  for (const b of opts.bootstrap ?? []) args.push("--bootstrap", b);
  const probe = (path: string) => ({ httpGet: { path, port: spec.healthPort }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 });
  return {
    name: AGENT_CONTAINER,
    image: opts.image,
    ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
    // the image's entrypoint already is `entangle`; explicit so the pod spec reads on its own
    command: ["entangle"],
    args,
    // the token first: user env comes after it and may add to, not hide, the agent's settings;
    // the pod IP last, so that what --health-listen expands to is always ours
    env: [
      { name: TOKEN_ENV, valueFrom: { secretKeyRef: { name: spec.secretRef, key: TOKEN_KEY } } },
      // the module's (or the pod's) level, unless spec.env sets its own
      ...(opts.logLevel && !spec.env?.some((e) => e.name === LOG_LEVEL_ENV) ? [{ name: LOG_LEVEL_ENV, value: opts.logLevel }] : []),
      ...(spec.env ?? []),
      ...(opts.forbidPublicBootstrap ? [{ name: "ENTANGLE_FORBID_PUBLIC_BOOTSTRAP", value: "1" }] : []),
      { name: POD_IP_ENV, valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
    ],
    ports: [{ name: HEALTH_PORT_NAME, containerPort: spec.healthPort, protocol: "TCP" }],
    livenessProbe: probe("/healthz"),
    ...(spec.readiness ? { readinessProbe: probe("/readyz") } : {}),
    // copies: callers may edit what they get without touching the next render
    resources: structuredClone(spec.resources ?? DEFAULT_RESOURCES),
    securityContext: structuredClone(SECURITY_CONTEXT),
    // the agent writes why it exits (bad input: one line) here; without it Kubernetes takes the
    // log's tail. Either way the reason lands in the container status, where controllers read it.
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

/**
 * The health/metrics server listens on the pod IP only: kubelet probes that address, and on the
 * host network 0.0.0.0 would be every address of the node. Kubernetes expands $(VAR) in args
 * from the container's env; brackets because the pod IP may be IPv6 (the CLI takes [IPv4] too).
 */
export function healthListen(port: number): string {
  return `[$(${POD_IP_ENV})]:${port}`;
}

/** The agent's log level variable (lib/p2p/log.ts reads it) and the levels it knows (pino's). */
export const LOG_LEVEL_ENV = "ENTANGLE_LOG_LEVEL";
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/**
 * A level the agent accepts, from what users of the original wrote (its chart's
 * sidecar.logLevel, edgevpn's --log-level): case-insensitive, "warning" for warn. Anything
 * else is undefined: the agent would exit on an unknown level.
 */
export function normalizeLogLevel(value: string | undefined): string | undefined {
  const level = value?.trim().toLowerCase();
  if (level === "warning") return "warn";
  return level && LOG_LEVELS.includes(level) ? level : undefined;
}

/** A Secret name (DNS-1123 subdomain): the CRD's secretRef and the sidecar's /name follow it. */
export const SECRET_NAME_MAX = 253;
export const SECRET_NAME_PATTERN = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";

export function secretNameProblem(name: string): string | undefined {
  if (name.length > SECRET_NAME_MAX || !new RegExp(SECRET_NAME_PATTERN).test(name))
    return `must be a Secret name (lowercase letters, digits, '-' and '.', at most ${SECRET_NAME_MAX} characters)`;
  return undefined;
}

/** Env names that would replace the token taken from the Secret (the agent reads either). */
export const RESERVED_ENV = [TOKEN_ENV, "EDGEVPNTOKEN"];

/** `preferred` unless a port in `taken` uses it; then the next free one above it. */
export function pickHealthPort(taken: Iterable<number>, preferred = DEFAULT_HEALTH_PORT): number {
  const used = new Set(taken);
  let port = preferred;
  while (used.has(port)) port = port >= 65535 ? 1024 : port + 1;
  return port;
}

/**
 * A host the agent CLI accepts (DNS name, IPv4, IPv6 with or without brackets), without
 * brackets; undefined otherwise, so bad input becomes a clear error, not a crash-looping agent.
 */
export function normalizeHost(value: string): string | undefined {
  const host = value.trim().replace(/^\[(.*)\]$/, "$1");
  if (isIP(host) === 6) return host;
  return /^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$/.test(host) ? host : undefined;
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || (isIP(h) === 4 && h.startsWith("127."));
}
