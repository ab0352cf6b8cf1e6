// Every Manifests CR the module knows of, and the remote objects each declares, kept from the
// watch and the resync's list. "Which objects do the other CRs declare?" is asked before every
// delete; it listed (and parsed) every CR each time: deleting 200 CRs made 325 lists of all 200
// (issue 11). Like an informer's store: a list replaces what it knew, except what a watch event
// newer than that list already brought.
import type { Manifests } from "../crds/index.ts";
import { declaredKeys, ownerId, parseEntries } from "../remote/manifests.ts";
import { notOlder } from "./caches.ts";

interface Entry {
  uid?: string;
  version?: string;
  serviceUUID?: string;
  deleting: boolean;
  /** objectKey()s of what its spec declares */
  keys: Set<string>;
}

export class ManifestsIndex {
  readonly #entries = new Map<string, Entry>();
  #listed = false;

  /** Whether a whole list has been taken in: before that, absence means nothing. */
  get complete(): boolean {
    return this.#listed;
  }

  /** A watch event or a list item: kept unless what we hold is newer. */
  observe(cr: Manifests): void {
    const id = ownerId(cr);
    const held = this.#entries.get(id);
    if (held && held.uid === cr.metadata?.uid && !notOlder(cr, { metadata: { resourceVersion: held.version } })) return;
    this.#entries.set(id, {
      uid: cr.metadata?.uid,
      version: cr.metadata?.resourceVersion,
      serviceUUID: cr.spec?.serviceUUID,
      deleting: Boolean(cr.metadata?.deletionTimestamp),
      keys: declaredKeys(parseEntries(cr.spec?.manifests)),
    });
  }

  /** A CR gone (its DELETED event, or our release of its finalizer). */
  forget(cr: Manifests): void {
    const id = ownerId(cr);
    const held = this.#entries.get(id);
    if (held && (cr.metadata?.uid === undefined || held.uid === cr.metadata.uid)) this.#entries.delete(id);
  }

  /** A whole list at `listVersion`: what it lacks is gone, unless an event newer than the list brought it. */
  replace(items: Manifests[], listVersion: string | undefined): void {
    const listed = new Set(items.map((cr) => ownerId(cr)));
    for (const [id, held] of this.#entries) if (!listed.has(id) && !newerThan(held.version, listVersion)) this.#entries.delete(id);
    for (const cr of items) this.observe(cr);
    this.#listed = true;
  }

  /** What the live CRs other than `self` declare for `serviceUUID`. */
  declaredByOthers(self: Manifests, serviceUUID: string): Set<string> {
    const id = ownerId(self);
    const keys = new Set<string>();
    for (const [other, e] of this.#entries) if (other !== id && !e.deleting && e.serviceUUID === serviceUUID) for (const k of e.keys) keys.add(k);
    return keys;
  }
}

function newerThan(version: string | undefined, listVersion: string | undefined): boolean {
  if (version === undefined || listVersion === undefined) return false;
  return version !== listVersion && notOlder({ metadata: { resourceVersion: version } }, { metadata: { resourceVersion: listVersion } });
}
