// Where a Manifests CR's objects live: the remote cluster reached as serviceUUID with the token
// of secretRef. When the spec names another target, what was applied to the former one must be
// deleted there (issue 15, defect 7: it was orphaned). Pure decisions; the controller does I/O.
import type { AppliedObject, FormerTarget, ManifestsTarget } from "../crds/manifests.ts";
import { mayExist, placeKey } from "./manifests.ts";

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
  const seen = new Set(records.map(placeKey));
  return {
    serviceUUID: target.serviceUUID,
    secretRef: target.secretRef,
    applied: [...records, ...(earlier?.applied ?? []).filter((a) => !seen.has(placeKey(a)))],
  };
}

/** "ConfigMap default/a, Pod default/test": the objects a message names. */
export function describeObjects(records: AppliedObject[]): string {
  return records.map((a) => `${a.kind} ${a.namespace ? a.namespace + "/" : ""}${a.name}`).join(", ");
}

/**
 * Attempts in a row after which a former target that refuses (403) to let us read or delete what
 * we left there is no longer retried: RBAC does not change by itself. An unreachable target, or a
 * missing Secret, is retried for ever (the remote may come back, the Secret be fixed); a refused
 * one until the spec changes, and once more when the CR is deleted (then, as for an unreachable
 * one, the finalizer says what it left and lets go).
 */
export const MAX_REFUSALS = 5;

/** Whether a former target is no longer retried: refused MAX_REFUSALS times in a row. */
export function givenUp(f: FormerTarget): boolean {
  return (f.refusals ?? 0) >= MAX_REFUSALS;
}

/**
 * The former target after an attempt that left `left` there (undefined: nothing left). Refusals in
 * a row are counted when the remote refused every delete (`refused`), from 1 again after a spec
 * change, and forgotten after any other outcome.
 */
export function afterAttempt(
  former: FormerTarget,
  left: AppliedObject[],
  outcome: { problem?: string; refused: boolean },
  specChanged: boolean,
): FormerTarget | undefined {
  if (left.length === 0) return undefined;
  const still: FormerTarget = { serviceUUID: former.serviceUUID, secretRef: former.secretRef, applied: left, message: outcome.problem };
  if (outcome.refused) still.refusals = (specChanged ? 0 : (former.refusals ?? 0)) + 1;
  return still;
}

const RETRY_HINT =
  "grant get and delete on them there and change the Manifests' spec to retry, or annotate the Manifests entangle-proxy.kairos.io/orphan=true to leave them";

/** The Warning when a former target is given up (givenUp): what is left where, the refusal, what to do. */
export function gaveUpMessage(f: FormerTarget): string {
  return `${describeObjects(f.applied)} left in ${describeTarget(f)}: ${f.message}; refused ${f.refusals} times in a row, no longer retried (${RETRY_HINT})`;
}

export type LeftCondition = { type: string; status: "True" | "False"; reason: string; message: string };

/**
 * A condition on objects a deletion left behind (Pruned, FormerTargetsCleared): True/Deleted when
 * nothing is left, else False, DeleteRefused when every item is given up and DeletePending while
 * some are retried; each item's line says when it is no longer retried, `tail` what to do.
 */
export function leftCondition<T extends { refusals?: number }>(
  type: string,
  left: T[],
  o: { cleared: string; line: (t: T) => string; givenUp: (t: T) => boolean; tail: (stopped: boolean) => string },
): LeftCondition {
  if (left.length === 0) return { type, status: "True", reason: "Deleted", message: o.cleared };
  const stopped = left.every(o.givenUp);
  return {
    type,
    status: "False",
    reason: stopped ? "DeleteRefused" : "DeletePending",
    message: left.map((t) => o.line(t) + (o.givenUp(t) ? `; refused ${t.refusals} times in a row, no longer retried` : "")).join("; ") + o.tail(stopped),
  };
}

/** The condition that says whether former targets still hold objects of this CR (DeleteRefused: none of them is retried). */
export function formerTargetsCondition(formers: FormerTarget[]): LeftCondition {
  return leftCondition("FormerTargetsCleared", formers, {
    cleared: "no objects left in a former target",
    line: (f) => `${describeObjects(f.applied)} left in ${describeTarget(f)}${f.message ? `: ${f.message}` : ""}`,
    givenUp,
    tail: (stopped) => (stopped ? `; ${RETRY_HINT}` : "; retrying (annotate the Manifests entangle-proxy.kairos.io/orphan=true to leave them)"),
  });
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
