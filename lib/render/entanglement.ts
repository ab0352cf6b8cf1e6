// Desired objects for an Entanglement: outbound -> a Deployment running `agent expose`;
// inbound -> a Deployment running `agent connect` and a Service (from serviceSpec) selecting it.
import type { kind } from "pepr";
import type { Entanglement, ServicePortLike } from "../crds/entanglement.ts";
import { serviceNameProblem } from "../p2p/service-name.ts";
import type { ServiceRefTarget } from "./service-ref.ts";
import { RESERVED_ENV, agentContainer, isLoopback, normalizeHost, pickHealthPort, secretNameProblem, type AgentOptions } from "./agent.ts";
import { formatHostPort, portNumber } from "../hostport.ts";

export type RenderResult =
  | { ok: true; deployment: kind.Deployment; service?: kind.Service; direction: "inbound" | "outbound" }
  | { ok: false; reason: "InvalidSpec"; message: string }
  | Extract<ServiceRefTarget, { ok: false }>;

export const MANAGED_BY = { "app.kubernetes.io/managed-by": "entangle" };
export const ENTANGLEMENT_LABEL = "entangle.kairos.io/entanglement";

function hash8(text: string): string {
  let h = 0;
  for (const c of text) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/**
 * `prefix + name`, at most 63 characters (names become label values): longer ones are cut and
 * end in a hash of the full name, so distinct names stay distinct and the result is stable.
 */
export function objectName(prefix: string, name: string): string {
  const full = `${prefix}${name}`;
  if (full.length <= 63) return full;
  return `${full.slice(0, 54).replace(/[-.]+$/, "")}-${hash8(full)}`;
}

/**
 * The Service is named like the CR, but Service names are DNS-1035 labels (no dots, leading
 * letter) while CR names may be DNS subdomains: such names are rewritten, with a hash of the
 * original so that "a.b" and "a-b" do not fight over one Service.
 */
export function serviceName(name: string): string {
  if (/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) return name;
  const cleaned = `${/^[a-z]/.test(name) ? "" : "e-"}${name.replace(/[^a-z0-9-]/g, "-")}`;
  return `${cleaned.slice(0, 54).replace(/-+$/, "")}-${hash8(name)}`;
}

const invalid = (message: string): RenderResult => ({ ok: false, reason: "InvalidSpec", message });

/**
 * `serviceTarget`: what spec.serviceRef resolved to (resolveServiceRef in service-ref.ts; the
 * controller looks the Service up first). It replaces spec.host and spec.port; when it could
 * not be resolved, its reason is the result once the rest of the spec is valid.
 */
export function renderEntanglement(cr: Entanglement, opts: AgentOptions, serviceTarget?: ServiceRefTarget): RenderResult {
  const spec = cr.spec;
  const name = cr.metadata?.name ?? "";
  const namespace = cr.metadata?.namespace ?? "default";
  // The CRD schema refuses all of these; checked again for objects that bypassed it.
  if (!spec?.serviceUUID) return invalid("spec.serviceUUID is required");
  const serviceProblem = serviceNameProblem(spec.serviceUUID);
  if (serviceProblem !== undefined) return invalid(`spec.serviceUUID ${serviceProblem}`);
  if (!spec.secretRef?.trim()) return invalid("spec.secretRef is required (a Secret with key network_token)");
  const secretProblem = secretNameProblem(spec.secretRef);
  if (secretProblem !== undefined) return invalid(`spec.secretRef ${secretProblem}, got ${JSON.stringify(spec.secretRef)}`);
  const reserved = (spec.env ?? []).find((e) => RESERVED_ENV.includes(e?.name));
  if (reserved !== undefined) return invalid(`spec.env must not set ${reserved.name}: the network token comes from spec.secretRef only`);
  const inbound = spec.inbound === true;
  const specPort = portNumber(spec.port);
  if (spec.port !== undefined && specPort === undefined) return invalid(`spec.port must be a number from 1 to 65535, got ${JSON.stringify(spec.port)}`);
  let target: { host: string; port: number } | undefined;
  if (spec.serviceRef !== undefined) {
    if (inbound) return invalid("spec.serviceRef applies to outbound Entanglements only (an inbound agent listens on spec.host)");
    if (!serviceTarget) return invalid(`spec.serviceRef: Service ${spec.serviceRef} was not looked up`);
    if (!serviceTarget.ok) return serviceTarget;
    target = serviceTarget;
  }
  const port = target ? target.port : specPort;
  if (port === undefined) return invalid(`spec.port must be a number from 1 to 65535, got ${JSON.stringify(spec.port ?? null)}`);
  const host = target ? target.host : normalizeHost(spec.host?.trim() || "127.0.0.1");
  if (host === undefined) return invalid(`spec.host must be a host name or an IP address, got ${JSON.stringify(spec.host)}`);
  // An inbound agent serves its Service, which reaches it on the pod IP: listening on the
  // seed's `host: 127.0.0.1` would make it unreachable, so loopback means all interfaces of the
  // pod. Not on the host network: there all interfaces are the node's, and the tunnel (which
  // asks nothing of its clients) would be open to anyone reaching the node. The host given is
  // kept; a Service then needs a node address as spec.host (README: host network).
  const listenHost = isLoopback(host) && !spec.hostNetwork ? (host.includes(":") ? "::" : "0.0.0.0") : host;
  const address = formatHostPort({ host: inbound ? listenHost : host, port });

  const instance = objectName("", name);
  const labels = { "app.kubernetes.io/name": "entangle-agent", "app.kubernetes.io/instance": instance, ...MANAGED_BY, [ENTANGLEMENT_LABEL]: instance };
  // immutable once the Deployment exists: never change these keys
  const selector = { [ENTANGLEMENT_LABEL]: instance, ...MANAGED_BY };
  const ownerReferences = cr.metadata?.uid
    ? [{ apiVersion: "entangle.kairos.io/v1alpha1", kind: "Entanglement", name, uid: cr.metadata.uid, controller: true, blockOwnerDeletion: true }]
    : undefined;
  const metadata = (objName: string) => ({ name: objName, namespace, labels, ...(ownerReferences ? { ownerReferences } : {}) });

  const container = agentContainer(
    {
      mode: inbound ? "connect" : "expose",
      service: spec.serviceUUID,
      address,
      secretRef: spec.secretRef,
      healthPort: pickHealthPort([port], opts.healthPort),
      env: spec.env,
      resources: spec.resources,
      readiness: true,
    },
    { ...opts, image: spec.image?.trim() || opts.image },
  );
  if (inbound) container.ports!.push({ name: "service", containerPort: port, protocol: "TCP" });

  const deployment: kind.Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(objectName("entangle-", name)),
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      // on the host network the health port is a host port: a surge pod could never start
      // next to the old one on a single node, so replace instead of rolling
      ...(spec.hostNetwork ? { strategy: { type: "Recreate" } } : {}),
      template: {
        metadata: { labels },
        spec: {
          ...(spec.hostNetwork ? { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" } : {}),
          // the agent needs no Kubernetes API and no service env vars
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
          containers: [container],
        },
      },
    },
  };
  if (!inbound) return { ok: true, deployment, direction: "outbound" };

  const { selector: _ignored, ...userSpec } = spec.serviceSpec ?? {};
  const userPorts: ServicePortLike[] = Array.isArray(userSpec.ports) && userSpec.ports.length > 0 ? userSpec.ports : [{ port, protocol: "TCP" }];
  const service: kind.Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(serviceName(name)),
    spec: {
      ...userSpec,
      // a Service with several ports needs a name on each
      ports: userPorts.map((p, i) => ({ ...(userPorts.length > 1 && !p.name ? { name: `port-${i}` } : {}), ...p, targetPort: p.targetPort ?? port })),
      selector,
    },
  };
  return { ok: true, deployment, service, direction: "inbound" };
}
