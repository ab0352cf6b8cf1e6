// Desired objects for an Entanglement: outbound -> a Deployment running `agent expose`;
// inbound -> a Deployment running `agent connect` and a Service (from serviceSpec) selecting it.
import type { Entanglement } from "../crds/entanglement.ts";
import { agentContainer, formatAddress, healthPortAvoiding, parsePort, type AgentOptions } from "./agent.ts";

export type RenderResult =
  | { ok: true; deployment: Record<string, unknown>; service?: Record<string, unknown>; direction: "inbound" | "outbound" }
  | { ok: false; reason: string; message: string };

export const MANAGED_BY = { "app.kubernetes.io/managed-by": "entangle" };
export const ENTANGLEMENT_LABEL = "entangle.kairos.io/entanglement";

/** Kubernetes names are at most 63 characters here (they also become label values). */
export function objectName(prefix: string, name: string): string {
  const full = `${prefix}${name}`;
  if (full.length <= 63) return full;
  let h = 0;
  for (const c of full) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return `${full.slice(0, 54)}-${h.toString(16).padStart(8, "0")}`;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host.startsWith("127.") || host === "::1";
}

export function renderEntanglement(cr: Entanglement, opts: AgentOptions): RenderResult {
  const spec = cr.spec;
  const name = cr.metadata?.name ?? "";
  const namespace = cr.metadata?.namespace ?? "default";
  if (!spec?.serviceUUID) return { ok: false, reason: "InvalidSpec", message: "spec.serviceUUID is required" };
  if (!spec.secretRef) return { ok: false, reason: "InvalidSpec", message: "spec.secretRef is required (a Secret with key network_token)" };
  const port = parsePort(spec.port);
  if (port === undefined) return { ok: false, reason: "InvalidSpec", message: `spec.port must be a number from 1 to 65535, got ${JSON.stringify(spec.port ?? null)}` };
  const inbound = spec.inbound === true;
  const host = spec.host?.trim() || (inbound ? "0.0.0.0" : "127.0.0.1");
  // An inbound agent serves the Service, which reaches it on the pod IP: the seed's
  // `host: 127.0.0.1` would make it unreachable, so loopback hosts listen on all interfaces.
  const address = inbound ? formatAddress(isLoopback(host) ? "0.0.0.0" : host, port) : formatAddress(host, port);

  const labels = { "app.kubernetes.io/name": "entangle-agent", "app.kubernetes.io/instance": objectName("", name), ...MANAGED_BY, [ENTANGLEMENT_LABEL]: objectName("", name) };
  const ownerReferences = cr.metadata?.uid
    ? [{ apiVersion: "entangle.kairos.io/v1alpha1", kind: "Entanglement", name, uid: cr.metadata.uid, controller: true, blockOwnerDeletion: true }]
    : undefined;
  const metadata = (objName: string) => ({ name: objName, namespace, labels, ...(ownerReferences ? { ownerReferences } : {}) });

  const container = agentContainer(
    { mode: inbound ? "connect" : "expose", service: spec.serviceUUID, address, secretRef: spec.secretRef, healthPort: healthPortAvoiding(port), env: spec.env, resources: spec.resources, readiness: true },
    { ...opts, image: spec.image || opts.image },
  );
  if (inbound) (container.ports as object[]).push({ name: "service", containerPort: port, protocol: "TCP" });

  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(objectName("entangle-", name)),
    spec: {
      replicas: 1,
      selector: { matchLabels: { [ENTANGLEMENT_LABEL]: labels[ENTANGLEMENT_LABEL], ...MANAGED_BY } },
      template: {
        metadata: { labels },
        spec: {
          ...(spec.hostNetwork ? { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" } : {}),
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          containers: [container],
        },
      },
    },
  };
  if (!inbound) return { ok: true, deployment, direction: "outbound" };

  const userSpec = (spec.serviceSpec ?? {}) as Record<string, unknown>;
  const ports = Array.isArray(userSpec.ports) && userSpec.ports.length > 0 ? (userSpec.ports as Array<Record<string, unknown>>) : [{ port, protocol: "TCP" }];
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(objectName("", name)),
    spec: {
      ...userSpec,
      ports: ports.map((p, i) => ({ name: p.name ?? (ports.length > 1 ? `port-${i}` : undefined), ...p, targetPort: p.targetPort ?? port })),
      selector: deployment.spec.selector.matchLabels,
    },
  };
  return { ok: true, deployment, service, direction: "inbound" };
}
