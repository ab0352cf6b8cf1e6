// Whether an object that already exists is ours to change. We never take over (and so, through
// ownerReferences, later delete) an object a user or another controller made.

interface Owned {
  kind?: string;
  metadata?: { name?: string; namespace?: string; ownerReferences?: { uid?: string; kind?: string; name?: string; controller?: boolean }[] };
}

/**
 * undefined when `existing` is absent or controlled by the owner with `ownerUid`; otherwise why
 * it is not ours, for a condition the user reads.
 */
export function notOurs(existing: Owned | undefined, ownerUid: string | undefined, kind: string): string | undefined {
  if (!existing) return undefined;
  const refs = existing.metadata?.ownerReferences ?? [];
  if (ownerUid && refs.some((r) => r.uid === ownerUid)) return undefined;
  const where = `${kind} ${existing.metadata?.namespace ? existing.metadata.namespace + "/" : ""}${existing.metadata?.name}`;
  const controller = refs.find((r) => r.controller);
  const by = controller ? `it belongs to ${controller.kind} ${controller.name}` : "it was not created by this Entanglement";
  return `${where} already exists and ${by}: left untouched (delete or rename it, or rename the Entanglement)`;
}
