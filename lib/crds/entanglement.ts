// Entanglement (entangle.kairos.io/v1alpha1): one service carried over the network, either
// exposed from this cluster (outbound) or made reachable in it (inbound), as in the seed docs.
import { a, RegisterKind } from "pepr";
import type { Condition } from "./conditions.ts";

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

export interface EntanglementSpec {
  serviceUUID: string;
  secretRef: string;
  host?: string;
  /** the seed writes it as a string ("80"); integers are accepted too */
  port?: string | number;
  hostNetwork?: boolean;
  inbound?: boolean;
  serviceSpec?: Record<string, unknown>;
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

export class Entanglement extends a.GenericKind {
  declare spec?: EntanglementSpec;
  declare status?: EntanglementStatus;
}

export const entanglementGVK = { group: "entangle.kairos.io", version: "v1alpha1", kind: "Entanglement", plural: "entanglements" };

RegisterKind(Entanglement, entanglementGVK);
