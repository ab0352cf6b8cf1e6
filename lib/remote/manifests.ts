// Pure parts of the Manifests controller: YAML entries -> objects (with per-object errors),
// object identity, ownership of remote objects, and what to prune.
import { parseYamlDocuments } from "../yaml.ts";
import type { AppliedObject } from "../crds/manifests.ts";

export interface RemoteObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/** The objects of one entry that are well formed, and why each of the others is not. */
export interface ParsedEntry {
  index: number;
  objects: RemoteObject[];
  errors: string[];
}

/** An entry is user YAML: bounded like every other YAML we take (see lib/yaml.ts). */
const MAX_ENTRY_BYTES = 1024 * 1024;

export function parseEntries(entries: string[] | undefined): ParsedEntry[] {
  return (entries ?? []).map((text, index) => {
    let docs: unknown[];
    try {
      docs = parseYamlDocuments(String(text ?? ""), { maxBytes: MAX_ENTRY_BYTES });
    } catch (err) {
      return { index, objects: [], errors: [`invalid YAML: ${(err as Error).message}`] };
    }
    const entry: ParsedEntry = { index, objects: [], errors: [] };
    docs.forEach((doc, i) => {
      if (doc !== null && doc !== undefined) collect(doc, docs.length > 1 ? `document ${i + 1}: ` : "", entry);
    });
    if (entry.objects.length === 0 && entry.errors.length === 0) entry.errors.push("no Kubernetes object in this entry");
    return entry;
  });
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A Kubernetes object, or a List of them (kubectl's `kind: List`, `ConfigMapList`, ...): one error per bad object. */
function collect(doc: unknown, where: string, entry: ParsedEntry): void {
  if (!isMapping(doc))
    return void entry.errors.push(`${where}each object must be a YAML mapping, got ${doc === null ? "null" : Array.isArray(doc) ? "a list" : typeof doc}`);
  const { apiVersion, kind, metadata, items } = doc;
  if (typeof apiVersion !== "string" || apiVersion === "" || typeof kind !== "string" || kind === "")
    return void entry.errors.push(`${where}apiVersion and kind are required`);
  if (kind.endsWith("List") && Array.isArray(items)) {
    // a List needs no name of its own: kubectl applies its items
    items.forEach((item, i) => collect(item, `${where}${kind} items[${i}]: `, entry));
    return;
  }
  if (!isMapping(metadata) || typeof metadata.name !== "string" || metadata.name === "")
    return void entry.errors.push(`${where}${kind}: metadata.name is required`);
  if (metadata.namespace !== undefined && typeof metadata.namespace !== "string")
    return void entry.errors.push(`${where}${kind} ${metadata.name}: metadata.namespace must be a string`);
  entry.objects.push(doc as RemoteObject);
}

export function objectKey(o: { apiVersion?: string; kind?: string; namespace?: string; name?: string }): string {
  return `${o.apiVersion}/${o.kind}/${o.namespace ?? ""}/${o.name}`;
}

/**
 * Records of an entry with errors that stay tracked although this run did not apply them: a
 * typo (or one bad List item) must neither forget nor prune what the entry applied before.
 */
export function keptRecords(previous: AppliedObject[] | undefined, entry: ParsedEntry): AppliedObject[] {
  if (entry.errors.length === 0) return [];
  const now = new Set(entry.objects.map((o) => placeKey(idOf(o))));
  return (previous ?? []).filter((a) => a.index === entry.index && mayExist(a) && !now.has(placeKey(a)));
}

/**
 * A record of an object that may be in the remote cluster: Applied, Pending (recorded before
 * its apply, which may have happened before the module died), or Failed after an earlier apply
 * succeeded (appliedBefore: a failed re-apply leaves the object there). Prune, deletion and a
 * retarget act on these; a Pending or Failed one is deleted only if it carries our owner
 * annotation (deleteClaim).
 */
export function mayExist(a: AppliedObject): boolean {
  return (a.state === "Applied" || a.state === "Pending" || (a.state === "Failed" && a.appliedBefore === true)) && !!a.name;
}

/** What names a remote object: a record of it, or a spec object (idOf). */
export interface ObjectId {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
}

/**
 * Where the remote client puts a namespaced object without metadata.namespace: its default
 * namespace, "default" (lib/remote/client.ts builds it without a kubeconfig context), whatever
 * the Manifests' own namespace.
 */
export const DEFAULT_NAMESPACE = "default";

/**
 * The one rule by which records and spec objects name the same remote object: apiVersion, kind,
 * name and namespace as applied, an unset namespace being DEFAULT_NAMESPACE. A record without a
 * namespace is a spec object's without one (Pending, or Failed before any apply) or a
 * cluster-scoped object's (the API server's answer names none); both are the object without a
 * namespace, so it never stands for (vouches for, keeps or prunes) one in another namespace.
 * (A cluster-scoped object's YAML may name a namespace: the controller drops it first, placed.)
 */
export function placeKey(o: ObjectId): string {
  return objectKey({ ...o, namespace: o.namespace ?? DEFAULT_NAMESPACE });
}

export function sameObject(a: ObjectId, b: ObjectId): boolean {
  return placeKey(a) === placeKey(b);
}

/**
 * `obj` as the API server keeps it: an object of a cluster-scoped kind (`namespaced` false) has no
 * namespace, whatever its YAML says (the server drops it). Its records name none, so its spec
 * object must not either: a Pending record of it in "elsewhere" was pruned, deleting it right
 * after its apply at every reconcile. `namespaced` undefined (kind unknown): as written.
 */
export function placed(obj: RemoteObject, namespaced: boolean | undefined): RemoteObject {
  if (namespaced !== false || obj.metadata.namespace === undefined) return obj;
  const { namespace: _dropped, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

export function idOf(o: RemoteObject): ObjectId {
  return { apiVersion: o.apiVersion, kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name };
}

/**
 * Objects applied before and no longer wanted: delete them remotely. (The controller carries
 * the records of an entry that failed to parse into `current`, so a typo prunes nothing.)
 */
export function toPrune(previous: AppliedObject[] | undefined, current: AppliedObject[]): AppliedObject[] {
  const keep = new Set(current.filter((a) => a.name).map(placeKey));
  return (previous ?? []).filter((p) => mayExist(p) && !keep.has(placeKey(p)));
}

/**
 * The write-ahead record: `previous` plus a Pending record of each object no record names yet,
 * written before anything is applied; undefined when every object is recorded (a resync, or an
 * edit of objects already applied, writes nothing more). A module killed between an apply and
 * its status write thus leaves no object that the next reconcile or the finalizer does not know.
 * A Failed record counts as known: an object that fails at every resync must not cost two
 * writes each time (the price: one applied at last just before a kill stays unknown).
 */
export function writeAhead(previous: AppliedObject[], entries: ParsedEntry[]): AppliedObject[] | undefined {
  const known = new Set(previous.filter((a) => a.name).map(placeKey));
  const pending: AppliedObject[] = entries.flatMap((e) =>
    e.objects
      .map((o) => ({
        index: e.index,
        apiVersion: o.apiVersion,
        kind: o.kind,
        namespace: o.metadata.namespace,
        name: o.metadata.name,
        state: "Pending" as const,
      }))
      .filter((r) => !known.has(placeKey(r))),
  );
  return pending.length > 0 ? [...previous, ...pending] : undefined;
}

/** Set on every remote object we apply: which Manifests CR ("namespace/name") declares it. */
export const OWNER_ANNOTATION = "entangle-proxy.kairos.io/owner";

export function ownerId(cr: { metadata?: { namespace?: string; name?: string } }): string {
  return `${cr.metadata?.namespace}/${cr.metadata?.name}`;
}

export function withOwner(obj: RemoteObject, owner: string): RemoteObject {
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...(obj.metadata.annotations ?? {}), [OWNER_ANNOTATION]: owner } } };
}

/**
 * Whether `existing` already holds every field of `desired` with the same value (fields the
 * server or others added aside): applying it again would change nothing. Lists must match in
 * length, element by element, so an atomic list extended by hand still counts as drift. Values
 * the server normalises (a quantity 0.5 read back as 500m) count as drift too: applied again.
 */
export function holdsAll(existing: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) return Array.isArray(existing) && existing.length === desired.length && desired.every((d, i) => holdsAll(existing[i], d));
  if (isMapping(desired)) return isMapping(existing) && Object.entries(desired).every(([k, v]) => holdsAll(existing[k], v));
  return existing === desired;
}

/**
 * Whether the remote object is ours to apply (or delete): absent, annotated with our id, or
 * recorded as applied by us before the annotation existed. Otherwise `otherCr` names the
 * Manifests that claims it (it may be gone: the caller checks), or the object is foreign.
 */
export type Claim = { mine: true } | { mine: false; otherCr?: string; message: string };

export function claimOf(existing: { metadata?: { annotations?: Record<string, string> } } | undefined, me: string, recordedByMe: boolean, what: string): Claim {
  if (!existing) return { mine: true };
  const owner = existing.metadata?.annotations?.[OWNER_ANNOTATION];
  if (owner === me || (owner === undefined && recordedByMe)) return { mine: true };
  if (owner === undefined)
    return { mine: false, message: `${what} already exists in the remote cluster and was not created by this Manifests: left untouched` };
  return { mine: false, otherCr: owner, message: `${what} is declared by Manifests ${owner}: left to it` };
}

/** The placeKey()s of what the entries declare. */
export function declaredKeys(entries: ParsedEntry[]): Set<string> {
  return new Set(entries.flatMap((e) => e.objects.map((o) => placeKey(idOf(o)))));
}

export function declaredBy(keys: Set<string>, a: AppliedObject): boolean {
  return keys.has(placeKey(a));
}
