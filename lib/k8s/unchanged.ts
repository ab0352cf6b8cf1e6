// Whether an object we server-side apply needs the write at all. An apply of an unchanged
// object changes nothing on the server but still costs a request, admission and a watch echo
// on both sides: at a thousand objects, a resync or a module restart would rewrite them all.
//
// The desired object carries a hash of itself (APPLIED_HASH): a changed rendering (a field
// added, changed or removed) changes the hash, so the apply happens; an object edited by
// someone else in a field we set no longer contains what we want (the drift is restored).
// Fields the API server adds (defaults, status, metadata) are ignored: `desired` need only be
// contained in `existing`.
import { createHash } from "node:crypto";
import { canonicalJson } from "./api.ts";

export const APPLIED_HASH = "entangle.kairos.io/applied-hash";

interface Obj {
  metadata?: { annotations?: Record<string, string> };
}

/** `desired` with APPLIED_HASH set to a hash of everything else in it. */
export function withAppliedHash<T extends Obj>(desired: T): T {
  const { [APPLIED_HASH]: _old, ...annotations } = desired.metadata?.annotations ?? {};
  const bare: Obj = { ...desired, metadata: { ...desired.metadata, annotations } };
  if (Object.keys(annotations).length === 0) delete bare.metadata!.annotations;
  const hash = createHash("sha256").update(canonicalJson(bare)).digest("hex").slice(0, 16);
  return { ...desired, metadata: { ...desired.metadata, annotations: { ...annotations, [APPLIED_HASH]: hash } } };
}

/**
 * Whether `existing` (as read from the API) must be written to become `desired` (from
 * withAppliedHash): it is absent, was applied from another rendering, or no longer holds every
 * field we set.
 */
export function needsApply(desired: Obj, existing: Obj | undefined): boolean {
  if (!existing) return true;
  const want = desired.metadata?.annotations?.[APPLIED_HASH];
  if (want === undefined || existing.metadata?.annotations?.[APPLIED_HASH] !== want) return true;
  return !contains(existing, desired);
}

/**
 * Whether `have` holds every field of `want` with the same value; lists must have the same
 * length and hold their elements in order (an extra or missing list element is a change).
 */
export function contains(have: unknown, want: unknown): boolean {
  if (want === undefined) return true;
  if (want === null || typeof want !== "object") return have === want;
  if (Array.isArray(want)) return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  if (have === null || typeof have !== "object" || Array.isArray(have)) return false;
  const h = have as Record<string, unknown>;
  return Object.entries(want as Record<string, unknown>).every(([key, value]) => contains(h[key], value));
}
