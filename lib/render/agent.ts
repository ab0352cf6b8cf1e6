// The agent container every rendered object runs: `entangle agent <mode>` with the token from
// the user's Secret (a secretKeyRef: the value is never copied), the module's peers, probes on
// the health port and a locked-down security context.
import type { EnvVar } from "../crds/entanglement.ts";

export const TOKEN_KEY = "network_token";
export const AGENT_CONTAINER = "entangle-agent";
export const DEFAULT_HEALTH_PORT = 8089;

export interface AgentOptions {
  image: string;
  peers: string[];
  imagePullPolicy?: string;
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

export function agentContainer(spec: AgentSpec, opts: AgentOptions): Record<string, unknown> {
  const args = ["agent", spec.mode, "--service", spec.service, spec.mode === "expose" ? "--target" : "--listen", spec.address, "--health-listen", `0.0.0.0:${spec.healthPort}`];
  for (const peer of opts.peers) args.push("--peer", peer);
  const probe = (path: string) => ({ httpGet: { path, port: spec.healthPort }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 });
  return {
    name: AGENT_CONTAINER,
    image: opts.image,
    ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
    command: ["entangle"],
    args,
    env: [{ name: "ENTANGLE_NETWORK_TOKEN", valueFrom: { secretKeyRef: { name: spec.secretRef, key: TOKEN_KEY } } }, ...(spec.env ?? [])],
    ports: [{ name: "health", containerPort: spec.healthPort, protocol: "TCP" }],
    livenessProbe: probe("/healthz"),
    ...(spec.readiness ? { readinessProbe: probe("/readyz") } : {}),
    resources: spec.resources ?? { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}

/** 1-65535 from a number or a decimal string, else undefined. */
export function parsePort(value: unknown): number | undefined {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

export function healthPortAvoiding(port: number): number {
  return port === DEFAULT_HEALTH_PORT ? DEFAULT_HEALTH_PORT + 1 : DEFAULT_HEALTH_PORT;
}

export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
