// Where a Manifests CR's objects live: the remote cluster reached as serviceUUID with the token
// of secretRef. When the spec names another target, what was applied to the former one must be
// deleted there (issue 15, defect 7: it was orphaned). Pure decisions; the controller does I/O.
import type { AppliedObject, FormerTarget, ManifestsTarget } from "../crds/manifests.ts";
import { mayExist } from "./manifests.ts";

export function targetOf(spec: { serviceUUID: string; secretRef: string }): ManifestsTarget {
  return { serviceUUID: spec.serviceUUID, secretRef: spec.secretRef };
}

export function sameTarget(a: ManifestsTarget, b: ManifestsTarget): boolean {
  return a.serviceUUID === b.serviceUUID && a.secretRef === b.secretRef;
}

export function describeTarget(t: ManifestsTarget): string {
  return `service ${t.serviceUUID} (token of Secret ${t.secretRef})`;
}

export interface Retarget {
  /** records of objects in the current target: what this reconcile may keep or prune */
  applied: AppliedObject[];
  /** targets that still hold objects of ours, to delete there */
  formerTargets: FormerTarget[];
}

/**
 * The records as they stand for `current`. A status without a target predates this field: its
 * objects are taken to be in the current target. On a change, the applied records move to
 * formerTargets; moving back to a former target takes its records back (they are pruned or
 * kept like any other record, no delete-then-recreate).
 */
export function retarget(
  status: { target?: ManifestsTarget; applied?: AppliedObject[]; formerTargets?: FormerTarget[] } | undefined,
  current: ManifestsTarget,
): Retarget {
  const applied = status?.applied ?? [];
  const formers = status?.formerTargets ?? [];
  const previous = status?.target ?? current;
  if (sameTarget(previous, current)) return { applied, formerTargets: formers };
  const back = formers.find((f) => sameTarget(f, current));
  const left = applied.filter(mayExist);
  const formerTargets = formers.filter((f) => f !== back);
  if (left.length > 0) formerTargets.push(addRecords(formerTargets, previous, left));
  return { applied: back?.applied ?? [], formerTargets };
}

/** previous with its records, merged with what an earlier entry for the same target still holds. */
function addRecords(formers: FormerTarget[], target: ManifestsTarget, records: AppliedObject[]): FormerTarget {
  const earlier = formers.find((f) => sameTarget(f, target));
  if (earlier) formers.splice(formers.indexOf(earlier), 1);
  const key = (a: AppliedObject) => `${a.apiVersion}/${a.kind}/${a.namespace ?? ""}/${a.name}`;
  const seen = new Set(records.map(key));
  return {
    serviceUUID: target.serviceUUID,
    secretRef: target.secretRef,
    applied: [...records, ...(earlier?.applied ?? []).filter((a) => !seen.has(key(a)))],
  };
}

/** "ConfigMap default/a, Pod default/test": the objects a message names. */
export function describeObjects(records: AppliedObject[]): string {
  return records.map((a) => `${a.kind} ${a.namespace ? a.namespace + "/" : ""}${a.name}`).join(", ");
}

/** The condition that says whether former targets still hold objects of this CR. */
export function formerTargetsCondition(formers: FormerTarget[]): { type: string; status: "True" | "False"; reason: string; message: string } {
  if (formers.length === 0) return { type: "FormerTargetsCleared", status: "True", reason: "Deleted", message: "no objects left in a former target" };
  return {
    type: "FormerTargetsCleared",
    status: "False",
    reason: "DeletePending",
    message: formers
      .map((f) => `${describeObjects(f.applied)} left in ${describeTarget(f)}${f.message ? `: ${f.message}` : ""}`)
      .join("; ")
      .concat("; retrying (annotate the Manifests entangle-proxy.kairos.io/orphan=true to leave them)"),
  };
}

/**
 * The target the records are in, as far as cleanup is concerned: a new secretRef holding the
 * same token for the same service reaches the same cluster, so nothing moves (no delete there
 * followed by a re-create).
 */
export function effectiveTarget(
  recorded: ManifestsTarget | undefined,
  current: ManifestsTarget,
  tokens: { recorded?: string; current?: string },
): ManifestsTarget | undefined {
  if (!recorded || recorded.serviceUUID !== current.serviceUUID || recorded.secretRef === current.secretRef) return recorded;
  return tokens.recorded !== undefined && tokens.recorded === tokens.current ? current : recorded;
}
