import { describe, expect, it } from "vitest";
import { claimOf, declaredBy, declaredKeys, holdsAll, keptRecords, OWNER_ANNOTATION, parseEntries, toPrune, withOwner } from "../../lib/remote/manifests.ts";
import { sameJson, notFound } from "../../lib/k8s/api.ts";
import type { AppliedObject } from "../../lib/crds/index.ts";
import { appliedConfigMap } from "../helpers/applied.ts";

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
    expect(parsed[1]).toMatchObject({ index: 1, objects: [], errors: [expect.stringMatching(/^invalid YAML/)] });
    expect(parsed[2]).toMatchObject({ objects: [{ kind: "Secret", metadata: { name: "s" } }], errors: [] });
    expect(parsed[3]).toMatchObject({ objects: [], errors: ["Pod: metadata.name is required"] });
    expect(parsed[4]).toMatchObject({ objects: [], errors: ["no Kubernetes object in this entry"] });
  });

  it("a malformed List item fails alone: the good item is kept, nothing throws", () => {
    const [entry] = parseEntries([
      "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: good}}\n- null\n- [1]\n- {kind: Secret}\n",
    ]);
    expect(entry.objects.map((o) => o.metadata.name)).toEqual(["good"]);
    expect(entry.errors).toEqual([
      "List items[1]: each object must be a YAML mapping, got null",
      "List items[2]: each object must be a YAML mapping, got a list",
      "List items[3]: apiVersion and kind are required",
    ]);
  });

  it("a standard List needs no metadata.name; its items do", () => {
    const [entry] = parseEntries([
      "apiVersion: v1\nkind: List\nmetadata: {}\nitems: [{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}, {apiVersion: v1, kind: ConfigMap, metadata: {}}]\n",
    ]);
    expect(entry.objects.map((o) => o.metadata.name)).toEqual(["a"]);
    expect(entry.errors).toEqual(["List items[1]: ConfigMap: metadata.name is required"]);
  });

  it("an entry with errors keeps what it applied before (nothing pruned), except what it still applies", () => {
    const rec = (name: string, index = 0): AppliedObject => ({ index, apiVersion: "v1", kind: "ConfigMap", namespace: "default", name, state: "Applied" });
    const [entry] = parseEntries(["apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}, null]\n"]);
    expect(keptRecords([rec("a"), rec("b"), rec("c", 1)], entry).map((r) => r.name)).toEqual(["b"]);
    expect(keptRecords([rec("a")], parseEntries(["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"])[0])).toEqual([]);
  });
});

describe("toPrune", () => {
  const obj = appliedConfigMap;

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

describe("ownership of remote objects", () => {
  const cm = (owner?: string) => ({ metadata: { name: "x", ...(owner ? { annotations: { [OWNER_ANNOTATION]: owner } } : {}) } });
  it("absent, annotated as ours, or recorded by us before the annotation: ours", () => {
    expect(claimOf(undefined, "ns/a", false, "ConfigMap x")).toEqual({ mine: true });
    expect(claimOf(cm("ns/a"), "ns/a", false, "ConfigMap x")).toEqual({ mine: true });
    expect(claimOf(cm(), "ns/a", true, "ConfigMap x")).toEqual({ mine: true });
  });
  it("someone else's object, or another CR's: not ours, with the reason", () => {
    expect(claimOf(cm(), "ns/a", false, "ConfigMap x")).toMatchObject({ mine: false, message: expect.stringContaining("not created by this Manifests") });
    expect(claimOf(cm("ns/b"), "ns/a", true, "ConfigMap x")).toMatchObject({
      mine: false,
      otherCr: "ns/b",
      message: "ConfigMap x is declared by Manifests ns/b: left to it",
    });
  });
  it("the applied object carries the owner annotation next to the user's", () => {
    const o = withOwner({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", annotations: { keep: "1" } } }, "ns/a");
    expect(o.metadata.annotations).toEqual({ keep: "1", [OWNER_ANNOTATION]: "ns/a" });
  });
  it("what other CRs declare is matched whatever the namespace spelling", () => {
    const keys = declaredKeys(parseEntries(["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"]));
    expect(declaredBy(keys, { index: 0, apiVersion: "v1", kind: "ConfigMap", namespace: "default", name: "x", state: "Applied" })).toBe(true);
    expect(declaredBy(keys, { index: 0, apiVersion: "v1", kind: "ConfigMap", namespace: "other", name: "x", state: "Applied" })).toBe(false);
  });
});

describe("holdsAll: a resync skips objects the remote already holds as declared", () => {
  const desired = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "a", namespace: "default", annotations: { "entangle-proxy.kairos.io/owner": "ns/cr" } },
    data: { value: "1" },
    list: [{ name: "x", port: 80 }],
  };
  const existing = {
    ...desired,
    metadata: { ...desired.metadata, uid: "u", resourceVersion: "7", managedFields: [{ manager: "entangle-proxy" }] },
    list: [{ name: "x", port: 80, protocol: "TCP" }],
  };

  it("holds: every declared field equal, server-added fields aside", () => {
    expect(holdsAll(existing, desired)).toBe(true);
  });

  it("drift: a value edited by hand, a field removed, a list entry added, a type changed", () => {
    expect(holdsAll({ ...existing, data: { value: "2" } }, desired)).toBe(false);
    expect(holdsAll({ ...existing, data: {} }, desired)).toBe(false);
    expect(holdsAll({ ...existing, list: [...existing.list, { name: "y", port: 81 }] }, desired)).toBe(false);
    expect(holdsAll({ ...existing, list: [{ name: "x", port: "80" }] }, desired)).toBe(false);
    expect(holdsAll({ ...existing, metadata: { ...existing.metadata, annotations: {} } }, desired)).toBe(false);
    expect(holdsAll(undefined, desired)).toBe(false);
    expect(holdsAll({ ...existing, list: { 0: { name: "x", port: 80 } } }, desired)).toBe(false);
  });

  it("a declared null is not held by an absent field (server-side apply would remove it)", () => {
    expect(holdsAll({ a: 1 }, { a: 1, b: null })).toBe(false);
    expect(holdsAll({ a: 1, b: null }, { a: 1, b: null })).toBe(true);
  });
});
