// lib/remote/manifests.ts edge cases the mutation run found unchecked: every refusal of an entry
// with its exact message, documents numbered only when there are several, Lists told from kinds
// that merely contain "List", object keys and owner ids, and records kept or pruned.
import { describe, expect, it } from "vitest";
import { claimOf, declaredBy, declaredKeys, keptRecords, objectKey, OWNER_ANNOTATION, ownerId, parseEntries, toPrune } from "../../lib/remote/manifests.ts";
import { readyChanged } from "../../lib/remote/status.ts";
import { appliedConfigMap as cm } from "../helpers/applied.ts";

const errorsOf = (yaml: string) => parseEntries([yaml])[0].errors;

describe("parseEntries: refusals and their messages", () => {
  it("no entries: nothing", () => {
    expect(parseEntries(undefined)).toEqual([]);
    expect(parseEntries([])).toEqual([]);
  });

  it("apiVersion and kind must be non-empty strings", () => {
    for (const head of [
      'apiVersion: ""\nkind: ConfigMap',
      "apiVersion: v1\nkind: ''",
      "kind: ConfigMap",
      "apiVersion: v1",
      "apiVersion: 1\nkind: ConfigMap",
      "apiVersion: v1\nkind: [a]",
    ])
      expect(errorsOf(`${head}\nmetadata: {name: a}\n`), head).toEqual(["apiVersion and kind are required"]);
  });

  it("metadata.name must be a non-empty string; metadata.namespace, when set, a string", () => {
    expect(errorsOf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ''}\n")).toEqual(["ConfigMap: metadata.name is required"]);
    expect(errorsOf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 5}\n")).toEqual(["ConfigMap: metadata.name is required"]);
    expect(errorsOf("apiVersion: v1\nkind: ConfigMap\nmetadata: [a]\n")).toEqual(["ConfigMap: metadata.name is required"]);
    expect(errorsOf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: 5}\n")).toEqual(["ConfigMap a: metadata.namespace must be a string"]);
    expect(parseEntries(["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\n"])[0].objects).toHaveLength(1);
  });

  it("documents are numbered only when the entry has several; empty documents are skipped", () => {
    expect(errorsOf("kind: A\n")).toEqual(["apiVersion and kind are required"]);
    const entry = parseEntries(["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\nkind: B\n---\n- 1\n"])[0];
    expect(entry.objects.map((o) => o.metadata.name)).toEqual(["a"]);
    expect(entry.errors).toEqual(["document 3: apiVersion and kind are required", "document 4: each object must be a YAML mapping, got a list"]);
  });

  it("List items: each one checked alone, whatever it is", () => {
    const entry = parseEntries([
      "apiVersion: v1\nkind: List\nitems:\n- null\n- [1]\n- text\n- 7\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: ok}}\n",
    ])[0];
    expect(entry.objects.map((o) => o.metadata.name)).toEqual(["ok"]);
    expect(entry.errors).toEqual([
      "List items[0]: each object must be a YAML mapping, got null",
      "List items[1]: each object must be a YAML mapping, got a list",
      "List items[2]: each object must be a YAML mapping, got string",
      "List items[3]: each object must be a YAML mapping, got number",
    ]);
  });

  it("a kind that only starts with List, or a List without an items list, is an object like any other", () => {
    const listFoo = parseEntries(["apiVersion: x/v1\nkind: ListFoo\nmetadata: {name: a}\nitems: []\n"])[0];
    expect([listFoo.objects.length, listFoo.errors]).toEqual([1, []]);
    const other = parseEntries(["apiVersion: x/v1\nkind: Foo\nmetadata: {name: a}\nitems: [{apiVersion: v1, kind: B, metadata: {name: b}}]\n"])[0];
    expect(other.objects.map((o) => o.kind)).toEqual(["Foo"]);
    expect(errorsOf("apiVersion: v1\nkind: List\nitems: {}\n")).toEqual(["List: metadata.name is required"]);
  });

  it("an entry up to 1 MiB is read (a larger one is refused by lib/yaml.ts)", () => {
    const big = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {v: "${"x".repeat(700_000)}"}\n`;
    expect(parseEntries([big])[0]).toMatchObject({ errors: [], objects: [{ metadata: { name: "big" } }] });
    expect(errorsOf(big + "#" + "y".repeat(400_000) + "\n")[0]).toMatch(/^invalid YAML: YAML is too large/);
  });
});

describe("identity, ownership and records", () => {
  it("objectKey: an unset namespace is empty; declaredBy reads it as default", () => {
    expect(objectKey({ apiVersion: "v1", kind: "ConfigMap", name: "a" })).toBe("v1/ConfigMap//a");
    expect(objectKey({ apiVersion: "v1", kind: "ConfigMap", namespace: "ns", name: "a" })).toBe("v1/ConfigMap/ns/a");
    const keys = declaredKeys(parseEntries(["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"]));
    expect(declaredBy(keys, { ...cm("a"), namespace: undefined })).toBe(true);
    expect(declaredBy(keys, { ...cm("a"), namespace: "other" })).toBe(false);
  });

  it("ownerId is namespace/name; the owner annotation's name is fixed (objects applied by older versions carry it)", () => {
    expect(ownerId({ metadata: { namespace: "ns", name: "x" } })).toBe("ns/x");
    expect(ownerId({})).toBe("undefined/undefined");
    expect(OWNER_ANNOTATION).toBe("entangle-proxy.kairos.io/owner");
  });

  it("claimOf an existing object without metadata: ours only if recorded", () => {
    expect(claimOf({}, "ns/a", true, "ConfigMap x")).toEqual({ mine: true });
    expect(claimOf({}, "ns/a", false, "ConfigMap x")).toMatchObject({ mine: false });
  });

  it("keptRecords: only for an entry with errors, only its Applied records not applied now", () => {
    const bad = { index: 0, objects: [], errors: ["invalid YAML: x"] };
    expect(keptRecords(undefined, bad)).toEqual([]);
    expect(keptRecords([cm("a"), cm("b", "Failed"), { ...cm("c"), index: 1 }], bad)).toEqual([cm("a")]);
    expect(keptRecords([cm("a")], { ...bad, errors: [] })).toEqual([]);
  });

  it("toPrune: nothing recorded, nothing to prune", () => {
    expect(toPrune(undefined, [cm("a")])).toEqual([]);
    expect(toPrune([cm("a"), cm("b")], [cm("a")])).toEqual([cm("b")]);
  });

  it("readyChanged reads the Ready condition, not the first one, and a status without conditions", () => {
    const ok = { type: "Ready", status: "True" as const, reason: "Applied", message: "m" };
    expect(readyChanged({ conditions: [{ ...ok, type: "FormerTargetsCleared", reason: "Deleted" }, ok] }, ok)).toBe(false);
    expect(readyChanged({}, ok)).toBe(true);
  });
});
