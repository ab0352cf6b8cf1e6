// Pure parts of the Manifests controller: YAML entries -> objects (with per-entry errors),
// object identity, and what to prune.
import yaml from "js-yaml";
import type { AppliedObject } from "../crds/manifests.ts";

export interface RemoteObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export type ParsedEntry = { index: number; objects: RemoteObject[] } | { index: number; error: string };

export function parseEntries(entries: string[] | undefined): ParsedEntry[] {
  return (entries ?? []).map((text, index) => {
    let docs: unknown[];
    try {
      docs = yaml.loadAll(text);
    } catch (err) {
      return { index, error: `invalid YAML: ${(err as Error).message.split("\n")[0]}` };
    }
    const objects: RemoteObject[] = [];
    for (const doc of docs) {
      if (doc === null || doc === undefined) continue;
      const o = doc as Partial<RemoteObject>;
      if (typeof o !== "object" || Array.isArray(o)) return { index, error: "each document must be a Kubernetes object (a YAML mapping)" };
      if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") return { index, error: "apiVersion and kind are required" };
      if (typeof o.metadata?.name !== "string" || o.metadata.name === "") return { index, error: `${o.kind}: metadata.name is required` };
      if (o.kind === "List" && Array.isArray((o as { items?: unknown }).items)) {
        objects.push(...(o as unknown as { items: RemoteObject[] }).items);
      } else objects.push(o as RemoteObject);
    }
    if (objects.length === 0) return { index, error: "no Kubernetes object in this entry" };
    return { index, objects };
  });
}

export function objectKey(o: { apiVersion?: string; kind?: string; namespace?: string; name?: string }): string {
  return `${o.apiVersion}/${o.kind}/${o.namespace ?? ""}/${o.name}`;
}

/**
 * Objects applied before and no longer wanted: delete them remotely. (The controller carries
 * the records of an entry that failed to parse into `current`, so a typo prunes nothing.)
 */
export function toPrune(previous: AppliedObject[] | undefined, current: AppliedObject[]): AppliedObject[] {
  const keep = new Set(current.filter((a) => a.name).map(objectKey));
  return (previous ?? []).filter((p) => p.state === "Applied" && p.name && !keep.has(objectKey(p)));
}
