// When the remote cluster refuses server-side apply (a PATCH) but grants create and update, as
// the seed's managed-cluster ClusterRole does (pods: create, delete, get, list, update, watch),
// apply the way `kubectl apply` does without patch: create what is absent, and replace what is
// present with our fields merged into the live object. Pure decisions; the controller does I/O.

type Json = unknown;
type Mapping = Record<string, Json>;

const isMapping = (v: Json): v is Mapping => typeof v === "object" && v !== null && !Array.isArray(v);

/** What to send instead of the refused apply. */
export type FallbackWrite = { verb: "create"; body: Mapping } | { verb: "update"; body: Mapping } | { verb: "none" };

/**
 * create when absent; nothing when the live object already holds every field we declare (no
 * write, as kubectl sends none); otherwise update: the live object (its resourceVersion, so a
 * concurrent change is refused, not overwritten) with our fields merged in.
 */
export function fallbackWrite(desired: Mapping, existing: Mapping | undefined): FallbackWrite {
  if (!existing) return { verb: "create", body: desired };
  if (covers(existing, desired)) return { verb: "none" };
  const body = mergeInto(existing, desired) as Mapping;
  delete (body.metadata as Mapping).managedFields; // the server keeps its own
  return { verb: "update", body };
}

/**
 * Whether `live` already has every field of `wanted`. Mappings: each key of wanted, recursively
 * (the server adds defaults we never declared). Lists: same length, element by element.
 */
export function covers(live: Json, wanted: Json): boolean {
  if (isMapping(wanted)) return isMapping(live) && Object.entries(wanted).every(([k, v]) => v === null || covers(live[k], v));
  if (Array.isArray(wanted)) return Array.isArray(live) && live.length === wanted.length && wanted.every((w, i) => covers(live[i], w));
  return live === wanted;
}

/**
 * `wanted` laid over `live`: mappings merged key by key, lists of the same length element by
 * element (a Pod's containers keep their server-set fields, which a Pod update may not drop),
 * anything else replaced by ours. Without the last-applied record of a patch, a field removed
 * from the manifest stays on the live object: the fallback only adds and changes.
 */
export function mergeInto(live: Json, wanted: Json): Json {
  if (isMapping(wanted) && isMapping(live)) {
    const out: Mapping = { ...live };
    for (const [k, v] of Object.entries(wanted)) out[k] = k in live ? mergeInto(live[k], v) : v;
    return out;
  }
  if (Array.isArray(wanted) && Array.isArray(live) && live.length === wanted.length) return wanted.map((w, i) => mergeInto(live[i], w));
  return wanted;
}

/** A 403 from the remote API server (RBAC or an admission that forbids). */
export function forbidden(err: unknown): boolean {
  const e = err as { code?: number; status?: number } | undefined;
  return e?.code === 403 || e?.status === 403;
}

/** What the user reads when the fallback was refused too: both refusals and what to grant. */
export function refusedMessage(kind: string, applyRefusal: string, verb: "create" | "update", refusal: string): string {
  return (
    `server-side apply (patch) was refused (${applyRefusal}) and so was the fallback ${verb} (${refusal}); ` +
    `the remote cluster's RBAC must allow patch, or create and update, on ${kind}`
  );
}

/**
 * When the remote refuses even to read the object, whether it is ours cannot be told: only a
 * create is safe (it fails if the object exists). What the user reads when that fails too.
 */
export function unreadableMessage(kind: string, readRefusal: string, createFailure: string, exists: boolean): string {
  return exists
    ? `${kind} exists in the remote cluster, which refuses to let us read it (${readRefusal}): cannot tell whether it is ours, left untouched`
    : `the remote cluster refused to read (${readRefusal}) and to create (${createFailure}) this ${kind}; its RBAC must allow get with patch, or get, create and update, on ${kind}`;
}
