// The Manifests controller's decisions, as pure functions: which Ready condition a reconcile
// ends with, which records survive a reconcile cut short, where deletion must look, what an
// API error says and whether it means the remote was not reached. lib/controller/manifests.ts
// keeps only the I/O.
import type { AppliedObject, Condition } from "../crds/index.ts";
import type { FormerTarget, ManifestsStatus, ManifestsTarget } from "../crds/manifests.ts";
import { mayExist, placeKey } from "./manifests.ts";
import { apiMessage } from "../k8s/api.ts";

export type ReadyCondition = Omit<Condition, "lastTransitionTime">;

/**
 * Ready after every entry was tried: True when nothing failed; otherwise False, as an
 * OwnershipConflict when some object belongs to someone else (the first conflict is named),
 * else ApplyFailed naming the first failure.
 */
export function appliedCondition(results: AppliedObject[], conflicts: string[], serviceUUID: string): ReadyCondition {
  const failed = results.filter((r) => r.state === "Failed");
  if (failed.length === 0) return { type: "Ready", status: "True", reason: "Applied", message: `${results.length} object(s) applied to ${serviceUUID}` };
  return {
    type: "Ready",
    status: "False",
    reason: conflicts.length > 0 ? "OwnershipConflict" : "ApplyFailed",
    message: `${failed.length} of ${results.length} failed: ${conflicts[0] ?? failed[0].message}`,
  };
}

/**
 * The record kept when contact was lost mid-reconcile: everything applied now, everything
 * applied before and not seen now (nothing is pruned or forgotten while offline), then the
 * failures.
 */
export function mergeForRetry(previous: AppliedObject[] | undefined, now: AppliedObject[]): AppliedObject[] {
  const seen = new Set(now.filter((n) => n.state === "Applied").map(placeKey));
  // a failure now that still "may exist" (appliedBefore) replaces one from before: no record piles up
  const failedAgain = new Set(now.filter((n) => n.state === "Failed" && mayExist(n)).map(placeKey));
  const replaced = (p: AppliedObject) => seen.has(placeKey(p)) || (p.state === "Failed" && failedAgain.has(placeKey(p)));
  return [
    ...now.filter((n) => n.state === "Applied"),
    // a Pending record stays Pending: its apply may have reached the remote before contact was lost
    ...(previous ?? []).filter((p) => mayExist(p) && !replaced(p)),
    ...now.filter((n) => n.state === "Failed"),
  ];
}

/**
 * Where a deleted CR's objects are: its recorded target (or, never applied, its spec's) and
 * every former target, each with the objects that may be there (Applied or Pending records); targets
 * holding none are left out.
 */
export function deletionTargets(status: ManifestsStatus | undefined, specTarget: ManifestsTarget): FormerTarget[] {
  const current: FormerTarget = {
    ...(status?.target ?? specTarget),
    applied: (status?.applied ?? []).filter(mayExist),
  };
  return [current, ...(status?.formerTargets ?? [])].filter((t) => t.applied.length > 0);
}

/** errno codes of a connection that failed or broke (node's net, and node-fetch's FetchError) */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * Errors that mean "could not reach the remote API" (contact lost: keep every record, retry)
 * rather than "the API refused" or a fault of ours: a connection refused, reset or timed out
 * (lib/remote/client.ts gives its timeout code ETIMEDOUT), or node-fetch's system FetchError.
 * Anything else (an HTTP answer, a TypeError, a body that does not parse) is a failure of
 * that object, reported as itself and retried with backoff, not "unreachable".
 */
export function unreachable(err: unknown): boolean {
  if (err === null || typeof err !== "object") return false;
  const e = err as { name?: unknown; type?: unknown; code?: unknown; body?: unknown };
  if (typeof e.code === "number" || e.body) return false; // an HTTP answer
  if (e.name === "FetchError" && e.type === "system") return true;
  return typeof e.code === "string" && NETWORK_CODES.has(e.code);
}

/** The remote API server's own message (its Status body), else the error's (an empty body says nothing). */
export function remoteMessage(err: unknown): string {
  const e = err as { body?: unknown } | undefined;
  if (typeof e?.body === "string" && e.body !== "") {
    try {
      return (JSON.parse(e.body) as { message?: string }).message ?? e.body;
    } catch {
      return e.body;
    }
  }
  if (e?.body && typeof e.body === "object") return (e.body as { message?: string }).message ?? JSON.stringify(e.body);
  return apiMessage(err);
}
