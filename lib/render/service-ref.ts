// spec.serviceRef (the original entangle's field): an outbound Entanglement targets a Service of
// its own namespace by DNS name instead of spec.host. The original dialed `<name>.svc.cluster.local`,
// which resolves nowhere (the namespace is missing); this is `<name>.<namespace>.svc.cluster.local`.
// Pure decision; the controller reads the Service.
import { portNumber } from "../hostport.ts";

/** The parts of a core/v1 Service read here. */
export interface ServiceLike {
  spec?: { type?: string; clusterIP?: string; ports?: Array<{ name?: string; port?: number }> };
}

export type ServiceRefTarget =
  | { ok: true; host: string; port: number }
  | { ok: false; reason: "ServiceNotFound" | "ServicePortAmbiguous" | "ServicePortNotFound"; message: string };

/** A Service name: a DNS-1035 label (what the API server requires of Services). */
export const SERVICE_REF_PATTERN = "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$";

export function serviceDnsName(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.cluster.local`;
}

/**
 * Where the agent connects for `serviceRef`: the Service's cluster DNS name and spec.port, or the
 * Service's only port when spec.port is unset. `service` undefined means it does not exist.
 * A Service with a cluster IP serves only its declared ports, so a spec.port it lacks is named
 * here rather than left to time out in the agent; headless and ExternalName Services pass any port
 * through (to the pods, or to the external name).
 */
export function resolveServiceRef(ref: { name: string; namespace: string; port?: string | number }, service: ServiceLike | undefined): ServiceRefTarget {
  const where = `Service ${ref.namespace}/${ref.name}`;
  if (!service) return { ok: false, reason: "ServiceNotFound", message: `spec.serviceRef: ${where} not found; waiting for it to be created` };
  const host = serviceDnsName(ref.name, ref.namespace);
  const ports = (service.spec?.ports ?? []).filter((p) => typeof p.port === "number");
  const wanted = portNumber(ref.port);
  if (wanted !== undefined) {
    const passThrough = service.spec?.type === "ExternalName" || service.spec?.clusterIP === "None";
    if (!passThrough && !ports.some((p) => p.port === wanted))
      return {
        ok: false,
        reason: "ServicePortNotFound",
        message: `spec.serviceRef: ${where} has no port ${wanted} (it serves ${describePorts(ports)}); set spec.port to one of them`,
      };
    return { ok: true, host, port: wanted };
  }
  if (ports.length === 1) return { ok: true, host, port: ports[0].port! };
  return {
    ok: false,
    reason: "ServicePortAmbiguous",
    message:
      ports.length === 0
        ? `spec.serviceRef: ${where} declares no port; set spec.port`
        : `spec.serviceRef: ${where} has ${ports.length} ports (${describePorts(ports)}); set spec.port to the one to use`,
  };
}

function describePorts(ports: Array<{ name?: string; port?: number }>): string {
  return ports.length === 0 ? "no port" : ports.map((p) => (p.name ? `${p.port} (${p.name})` : `${p.port}`)).join(", ");
}
