// Manifests (entangle-proxy.kairos.io/v1alpha1): YAML documents applied to the remote cluster
// whose Kubernetes API is exposed on the network as `serviceUUID`.
import { a, RegisterKind } from "pepr";
import type { Condition } from "./conditions.ts";

export interface ManifestsSpec {
  serviceUUID: string;
  secretRef: string;
  manifests?: string[];
}

export interface AppliedObject {
  /** index of the entry in spec.manifests */
  index: number;
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  /** Pending: recorded before its apply (which may or may not have happened: the module may have died in between) */
  state: "Applied" | "Failed" | "Pending";
  message?: string;
  /**
   * Failed only: this apply failed, but an earlier one succeeded (or the object was seen carrying
   * our owner annotation), so it may still be in the remote cluster: pruned, deleted with the CR
   * and moved by a retarget like an Applied one (only if it carries our annotation).
   */
  appliedBefore?: boolean;
  /**
   * An object removed from spec.manifests that the remote refused (403) to let us delete, this many
   * prunes in a row: at MAX_REFUSALS it is no longer tried until the spec changes (condition Pruned)
   */
  refusals?: number;
}

/** Where objects were applied: the service and the Secret whose token reaches it (never the token). */
export interface ManifestsTarget {
  serviceUUID: string;
  secretRef: string;
}

/** A target the spec no longer names that still holds objects of this CR: deleted there, retried. */
export interface FormerTarget extends ManifestsTarget {
  applied: AppliedObject[];
  /** why they could not be deleted yet */
  message?: string;
  /** attempts in a row that the remote refused (403): at MAX_REFUSALS it is no longer retried until the spec changes */
  refusals?: number;
}

export interface ManifestsStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  applied?: AppliedObject[];
  /** the target `applied` refers to */
  target?: ManifestsTarget;
  formerTargets?: FormerTarget[];
  /** entries of `applied` in state Applied: a printer column cannot count an array */
  appliedCount?: number;
  /** every entry of spec.manifests applied (the original entangle-proxy's field, for scripts) */
  executed?: boolean;
  /** RFC 3339 time the status last changed */
  lastSync?: string;
}

// `declare` only: a field initializer would overwrite what kubernetes-fluent-client assigns.
export class Manifests extends a.GenericKind {
  declare spec?: ManifestsSpec;
  declare status?: ManifestsStatus;
}

export const manifestsGVK = { group: "entangle-proxy.kairos.io", version: "v1alpha1", kind: "Manifests", plural: "manifests" };

RegisterKind(Manifests, manifestsGVK);
