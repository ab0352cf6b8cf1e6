// Entanglement (entangle.kairos.io/v1alpha1): one service carried over the network, either
// exposed from this cluster (outbound) or made reachable in it (inbound), as in the seed docs.
import { a, RegisterKind } from "pepr";
import type { Condition } from "./conditions.ts";

/** core/v1 EnvVar; valueFrom is passed through as written. */
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

/** core/v1 ServicePort, loosely: only what the renderer reads is typed. */
export interface ServicePortLike {
  name?: string;
  port: number;
  protocol?: string;
  targetPort?: number | string;
  [field: string]: unknown;
}

/** core/v1 ServiceSpec, loosely; `selector` is always replaced by the agent's labels. */
export interface ServiceSpecLike {
  ports?: ServicePortLike[];
  type?: string;
  [field: string]: unknown;
}

export interface EntanglementSpec {
  serviceUUID: string;
  secretRef: string;
  /** outbound: host to forward to; inbound: address to listen on */
  host?: string;
  /** outbound: a Service in this namespace to forward to instead of `host` (the original's field) */
  serviceRef?: string;
  /** the seed writes it as a string ("80"); integers are accepted too */
  port?: string | number;
  hostNetwork?: boolean;
  inbound?: boolean;
  serviceSpec?: ServiceSpecLike;
  env?: EnvVar[];
  /** agent image for this Entanglement (default: the module's ENTANGLE_AGENT_IMAGE) */
  image?: string;
  resources?: Record<string, unknown>;
}

export interface EntanglementStatus {
  observedGeneration?: number;
  phase?: string;
  direction?: "inbound" | "outbound";
  readyReplicas?: number;
  lastError?: string;
  conditions?: Condition[];
}

// `declare` only: a field initializer would overwrite what kubernetes-fluent-client assigns.
export class Entanglement extends a.GenericKind {
  declare spec?: EntanglementSpec;
  declare status?: EntanglementStatus;
}

export const entanglementGVK = { group: "entangle.kairos.io", version: "v1alpha1", kind: "Entanglement", plural: "entanglements" };

RegisterKind(Entanglement, entanglementGVK);
