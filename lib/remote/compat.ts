// Fields of the original entangle-proxy that scripts and YAML still use, mapped onto ours.
// Pure decisions; lib/controller/manifests.ts does the I/O.

/** Ours: deleting the CR (or moving it to another target) leaves its remote objects. */
export const ORPHAN_ANNOTATION = "entangle-proxy.kairos.io/orphan";
/** The original's: present (whatever its value) means the same as ORPHAN_ANNOTATION "true". */
export const NO_FINALIZE_ANNOTATION = "entanglement-proxy.kairos.io/no-finalize";

/** Whether deleting (or moving) this Manifests CR leaves what it applied in the remote cluster. */
export function keepsRemoteObjects(annotations: Record<string, string> | undefined): boolean {
  return annotations?.[ORPHAN_ANNOTATION] === "true" || (annotations !== undefined && NO_FINALIZE_ANNOTATION in annotations);
}

/**
 * status.executed (the original's boolean): true once every entry of this generation's
 * spec.manifests is applied (Ready=True). It stays true while the remote cannot be asked (an
 * unreachable remote, a Secret being replaced): what was applied is still there. It turns false
 * when the spec changes (until the new entries are applied) or an entry fails to apply.
 */
export function executedNow(
  previous: { executed?: boolean; observedGeneration?: number } | undefined,
  generation: number | undefined,
  ready: { status: string; reason: string },
): boolean {
  if (ready.status === "True") return true;
  const refused = ready.reason === "ApplyFailed" || ready.reason === "OwnershipConflict";
  return previous?.executed === true && previous.observedGeneration === generation && !refused;
}
