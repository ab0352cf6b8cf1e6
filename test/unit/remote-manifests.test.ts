import { describe, expect, it } from "vitest";
import { parseEntries, toPrune } from "../../lib/remote/manifests.ts";
import { sameJson, notFound } from "../../lib/k8s/api.ts";
import type { AppliedObject } from "../../lib/crds/index.ts";

describe("parseEntries", () => {
  it("accepts multi-document entries and Lists, and fails one entry alone with a clear message", () => {
    const parsed = parseEntries([
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
      "kind: [unclosed",
      "apiVersion: v1\nkind: List\nmetadata: {name: l}\nitems: [{apiVersion: v1, kind: Secret, metadata: {name: s}}]\n",
      "apiVersion: v1\nkind: Pod\nmetadata: {}\n",
      "---\n",
    ]);
    expect(parsed[0]).toMatchObject({ index: 0, objects: [{ metadata: { name: "a" } }, { metadata: { name: "b" } }] });
    expect(parsed[1]).toMatchObject({ index: 1, error: expect.stringMatching(/^invalid YAML/) });
    expect(parsed[2]).toMatchObject({ objects: [{ kind: "Secret", metadata: { name: "s" } }] });
    expect(parsed[3]).toMatchObject({ error: "Pod: metadata.name is required" });
    expect(parsed[4]).toMatchObject({ error: "no Kubernetes object in this entry" });
  });
});

describe("toPrune", () => {
  const obj = (name: string, state: AppliedObject["state"] = "Applied"): AppliedObject => ({
    index: 0,
    apiVersion: "v1",
    kind: "ConfigMap",
    namespace: "default",
    name,
    state,
  });
  it("prunes what was applied before and is no longer wanted, nothing else", () => {
    expect(toPrune([obj("a"), obj("b"), obj("c", "Failed")], [obj("a")]).map((o) => o.name)).toEqual(["b"]);
    expect(toPrune(undefined, [obj("a")])).toEqual([]);
  });
});

describe("api helpers", () => {
  it("compares JSON whatever the key order, ignoring unset fields", () => {
    expect(sameJson({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { e: 3, d: 2 }] }, a: 1, z: undefined })).toBe(true);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  });
  it("recognises 404 from both clients", () => {
    expect([notFound({ status: 404 }), notFound({ code: 404 }), notFound({ status: 409 }), notFound(undefined)]).toEqual([true, true, false, false]);
  });
});
