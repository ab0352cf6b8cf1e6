// More of the Manifests controller's decisions, as pure functions: the status a reconcile writes
// (and whether it writes at all), whether Ready changed, when to retry, what prune and
// finalize leave in place and what they say about it. lib/controller/manifests.ts keeps the I/O.
import { setCondition, type AppliedObject, type ManifestsStatus } from "../crds/index.ts";
import type { FormerTarget, ManifestsTarget } from "../crds/manifests.ts";
import { sameJson } from "../k8s/api.ts";
import { executedNow } from "./compat.ts";
import { describeObjects, describeTarget, formerTargetsCondition, leftCondition, MAX_REFUSALS, type LeftCondition } from "./targets.ts";
import { claimOf, idOf, sameObject, type Claim, type RemoteObject } from "./manifests.ts";
import type { ReadyCondition } from "./outcome.ts";

/**
 * A watch event that brings nothing to do: Ready for the current generation, not being deleted,
 * finalizer in place. That is the echo of our own status write (and, after a module restart,
 * every converged CR): the resync timer still checks such CRs for drift.
 */
export function settledEvent(
  cr: { metadata?: { generation?: number; deletionTimestamp?: unknown; finalizers?: string[] }; status?: ManifestsStatus },
  finalizer: string,
): boolean {
  const generation = cr.metadata?.generation;
  if (generation === undefined || cr.metadata?.deletionTimestamp || !cr.metadata?.finalizers?.includes(finalizer)) return false;
  const ready = cr.status?.conditions?.find((c) => c.type === "Ready");
  return cr.status?.observedGeneration === generation && ready?.status === "True" && ready.observedGeneration === generation;
}

/** A merge patch of the status: formerTargets null removes the field. */
export type StatusPatch = Omit<ManifestsStatus, "formerTargets"> & { formerTargets: FormerTarget[] | null };

/**
 * The status after a reconcile, or undefined when it says nothing new (lastSync aside): then
 * nothing is written and no watch event comes back. FormerTargetsCleared appears only once a
 * target has changed (most CRs never move).
 */
export function nextStatus(
  old: ManifestsStatus | undefined,
  generation: number | undefined,
  ready: ReadyCondition,
  applied: AppliedObject[],
  target: ManifestsTarget,
  formerTargets: FormerTarget[],
  now = new Date(),
  pruneLeft?: AppliedObject[],
): StatusPatch | undefined {
  const prev = old ?? {};
  let conditions = setCondition(prev.conditions, { ...ready, observedGeneration: generation }, now);
  if (formerTargets.length > 0 || conditions.some((c) => c.type === "FormerTargetsCleared"))
    conditions = setCondition(conditions, { ...formerTargetsCondition(formerTargets), observedGeneration: generation }, now);
  // like FormerTargetsCleared, Pruned appears once a prune leaves something (undefined: no prune was tried)
  if (pruneLeft && (pruneLeft.length > 0 || conditions.some((c) => c.type === "Pruned")))
    conditions = setCondition(conditions, { ...prunedCondition(pruneLeft), observedGeneration: generation }, now);
  const status: StatusPatch = {
    observedGeneration: generation,
    conditions,
    applied,
    target,
    formerTargets: formerTargets.length > 0 ? formerTargets : null,
    appliedCount: applied.filter((a) => a.state === "Applied").length,
    executed: executedNow(prev, generation, ready),
    lastSync: prev.lastSync,
  };
  if (sameJson({ ...prev, lastSync: undefined }, { ...status, lastSync: undefined })) return undefined;
  return { ...status, lastSync: now.toISOString() };
}

/**
 * The status write of the write-ahead record (lib/remote/manifests.ts writeAhead), with the
 * target (and former targets) it is for; the conditions and observedGeneration wait for the
 * outcome. `status` is the CR's status after it: the final write compares against it.
 */
export function aheadStatus(
  old: ManifestsStatus | undefined,
  applied: AppliedObject[],
  target: ManifestsTarget,
  formerTargets: FormerTarget[],
): { patch: Pick<StatusPatch, "applied" | "target" | "formerTargets" | "appliedCount">; status: ManifestsStatus } {
  const patch = {
    applied,
    target,
    formerTargets: formerTargets.length > 0 ? formerTargets : null,
    appliedCount: applied.filter((a) => a.state === "Applied").length,
  };
  return { patch, status: { ...old, ...patch, formerTargets: patch.formerTargets ?? undefined } };
}

/** Whether Ready changed status or reason since `old`: an Event says so (Warning unless True). */
export function readyChanged(old: ManifestsStatus | undefined, ready: ReadyCondition): boolean {
  const prev = old?.conditions?.find((c) => c.type === "Ready");
  return prev?.status !== ready.status || prev?.reason !== ready.reason;
}

/** The next retry delay: doubling from 2 s, at most 30 s. */
export function nextRetryDelay(previous: number | undefined): number {
  return Math.min((previous ?? 1_000) * 2, 30_000);
}

/**
 * The record that says `obj` was applied before, in one look: its Applied record, else a Failed
 * one with appliedBefore (a re-apply that failed), else undefined. Only the Applied one vouches
 * for an object without our owner annotation (claimOf); either keeps a failed re-apply's record
 * "may exist" (failedRecord). A record of the same kind and name in another namespace is another
 * object's (sameObject): it vouches for nothing here.
 */
export function priorRecord(previous: AppliedObject[], obj: RemoteObject): AppliedObject | undefined {
  const id = idOf(obj);
  let failed: AppliedObject | undefined;
  for (const a of previous) {
    if (!sameObject(a, id)) continue;
    if (a.state === "Applied") return a;
    if (a.state === "Failed" && a.appliedBefore) failed ??= a;
  }
  return failed;
}

/**
 * What a reconcile saw of an object whose apply then failed: nothing there (absent, or its kind is
 * not served), there and ours (our owner annotation, or an Applied record vouching for it), there
 * and someone else's, or nothing known (the read failed or was refused).
 */
export type Sighting = { seen: "absent" | "theirs" | "unknown" } | { seen: "ours"; namespace?: string };

/**
 * The Failed record of this reconcile's failed apply. It stays "may exist remotely" (appliedBefore,
 * with the namespace the object is in) when the object was seen there as ours, or when nothing was
 * seen and it was applied before (`prior`, priorRecord's): forgotten, it would never be pruned nor
 * deleted with the CR. Seen absent or someone else's, it is a plain failure. A Pending record alone
 * (no apply known to have happened) does not make one: an object the remote refuses to read
 * and to create is not ours to look for later.
 */
export function failedRecord(ref: AppliedObject, message: string, prior: AppliedObject | undefined, sighting: Sighting): AppliedObject {
  const failed: AppliedObject = { ...ref, state: "Failed", message };
  if (sighting.seen === "ours") return { ...failed, namespace: ref.namespace ?? sighting.namespace ?? prior?.namespace, appliedBefore: true };
  if (sighting.seen === "unknown" && prior) return { ...failed, namespace: ref.namespace ?? prior.namespace, appliedBefore: true };
  return failed;
}

/**
 * Whether a recorded object found in the remote cluster is ours to delete. Only an Applied record
 * vouches for an object without our annotation (made before the annotation existed): a Pending
 * record's object may be someone else's that was never applied (claimOf refused it, or the
 * module died first), so it is ours only if it carries our annotation.
 */
export function deleteClaim(existing: { metadata?: { annotations?: Record<string, string> } }, me: string, a: AppliedObject): Claim {
  return claimOf(existing, me, a.state === "Applied", describeObjects([a]));
}

/** Why a recorded object is left in place instead of deleted (another owner, or still declared by another Manifests), or undefined. */
export function leaveReason(claim: Claim, declaredByOther: boolean, a: AppliedObject): string | undefined {
  if (!claim.mine) return claim.message;
  return declaredByOther ? `${describeObjects([a])} is still declared by another Manifests: left in place` : undefined;
}

/** The RemoteObjectsOrphaned warning when deleting a CR could not delete what it left in a target. */
export function orphanedMessage(left: AppliedObject[], target: ManifestsTarget, problem: string | undefined): string {
  return `could not delete ${describeObjects(left)} from ${describeTarget(target)} (${problem}); they were left in that remote cluster`;
}

/**
 * Whether a record that prune could not delete is no longer tried: the remote refused (403) it
 * MAX_REFUSALS times in a row. As for a former target (givenUp), until the spec changes, and once
 * more when the CR is deleted.
 */
export function pruneGivenUp(a: AppliedObject): boolean {
  return (a.refusals ?? 0) >= MAX_REFUSALS;
}

/**
 * The record prune keeps after a delete that failed, tried again later. Refusals in a row are
 * counted when the remote refused (403), from 1 again after a spec change, and forgotten after
 * any other failure (an unreachable remote, a 500: retried for ever).
 */
export function leftByPrune(gone: AppliedObject, problem: string, refused: boolean, specChanged: boolean): AppliedObject {
  const { refusals, ...record } = gone;
  const left: AppliedObject = { ...record, message: `could not delete: ${problem}` };
  return refused ? { ...left, refusals: (specChanged ? 0 : (refusals ?? 0)) + 1 } : left;
}

const PRUNE_HINT = "grant get and delete on them there and change the Manifests' spec to retry";

/**
 * The Pruned condition: whether objects removed from spec.manifests are still in the remote
 * cluster (`left`: the records prune could not delete). DeleteRefused when none of them is
 * retried (pruneGivenUp); Ready says nothing about them (every object of the spec is applied).
 */
export function prunedCondition(left: AppliedObject[]): LeftCondition {
  return leftCondition("Pruned", left, {
    cleared: "every object removed from spec.manifests is deleted",
    line: (a) => `${describeObjects([a])}: ${a.message ?? "could not delete"}`,
    givenUp: pruneGivenUp,
    tail: (stopped) => (stopped ? `; removed from spec.manifests but left in the remote cluster (${PRUNE_HINT})` : "; removed from spec.manifests, retrying"),
  });
}

/** The DeleteRefused Warning when prune gives up records (pruneGivenUp): once, naming them, where, and the refusal. */
export function pruneGaveUpMessage(given: AppliedObject[], target: ManifestsTarget): string {
  return `${describeObjects(given)} removed from spec.manifests but left in ${describeTarget(target)}: ${given[0].message}; refused ${MAX_REFUSALS} times in a row, no longer retried (${PRUNE_HINT})`;
}
