// The seed document's YAML examples (test/fixtures/seed, copied verbatim), with the
// placeholder token replaced by a real one when asked.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

export type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
};

export function seedText(name: string, token?: string): string {
  const text = readFileSync(new URL(`../fixtures/seed/${name}.yaml`, import.meta.url), "utf8");
  return token ? text.replace(/_YOUR_SECRET_GOES_HERE_|YOUR_NETWORK_TOKEN_GOES_HERE/g, token) : text;
}

/** Documents of a seed example; `kind: List` items are flattened. */
export function seedObjects(name: string, token?: string): Obj[] {
  const docs = yaml.loadAll(seedText(name, token)).filter((d): d is Obj => d !== null && typeof d === "object");
  return docs.flatMap((d) => (d.kind === "List" ? (d.items as Obj[]) : [d]));
}

export function seedObject(name: string, kind: string): Obj {
  const found = seedObjects(name).find((o) => o.kind === kind);
  if (!found) throw new Error(`${name}: no ${kind}`);
  return found;
}
