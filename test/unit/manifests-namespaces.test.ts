// Two objects of the same kind and name in two namespaces are two objects: one's record never
// stands for the other (sameObject, placeKey). A record in namespace a vouched for an object in
// namespace b: an object we never applied was taken over, then pruned or deleted with the CR
// (test/e2e/manifests-namespaces.test.ts shows it against a real API server).
import { describe, expect, it } from "vitest";
import type { AppliedObject } from "../../lib/crds/manifests.ts";
import { declaredBy, declaredKeys, keptRecords, parseEntries, placed, placeKey, sameObject, toPrune, writeAhead } from "../../lib/remote/manifests.ts";
import { mergeForRetry } from "../../lib/remote/outcome.ts";
import { priorRecord } from "../../lib/remote/status.ts";

const rec = (name: string, namespace: string | undefined, state: AppliedObject["state"] = "Applied", extra: Partial<AppliedObject> = {}) =>
  ({ index: 0, apiVersion: "v1", kind: "ConfigMap", namespace, name, state, ...extra }) as AppliedObject;
const obj = (name: string, namespace?: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace } });
const yaml = (name: string, namespace?: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}${namespace ? `, namespace: ${namespace}` : ""}}\n`;

describe("sameObject: one rule for records and spec objects", () => {
  it("same apiVersion, kind, name and namespace; an unset namespace is the remote client's default", () => {
    expect(sameObject(rec("x", "a"), rec("x", "a"))).toBe(true);
    expect(sameObject(rec("x", "a"), rec("x", "b"))).toBe(false);
    expect(sameObject(rec("x", undefined), rec("x", "default"))).toBe(true);
    // a record without a namespace (Pending, an older version's, a cluster-scoped object's) is never another namespace's
    expect(sameObject(rec("x", undefined), rec("x", "a"))).toBe(false);
    expect(sameObject(rec("x", "a"), { ...rec("x", "a"), kind: "Secret" })).toBe(false);
    expect(placeKey(rec("x", undefined))).toBe("v1/ConfigMap/default/x");
  });
});

describe("priorRecord: a record in another namespace vouches for nothing", () => {
  it("the Applied record of namespace a is not the object of namespace b", () => {
    expect(priorRecord([rec("x", "a")], obj("x", "b"))).toBeUndefined();
    expect(priorRecord([rec("x", "a"), rec("x", "b")], obj("x", "b"))).toEqual(rec("x", "b"));
    expect(priorRecord([rec("x", "a", "Failed", { appliedBefore: true })], obj("x", "b"))).toBeUndefined();
  });

  it("an object without a namespace is the one its apply recorded in default; a record without one stands for default only", () => {
    expect(priorRecord([rec("x", "default")], obj("x"))).toEqual(rec("x", "default"));
    expect(priorRecord([rec("x", undefined)], obj("x", "default"))).toEqual(rec("x", undefined));
    expect(priorRecord([rec("x", undefined)], obj("x", "b"))).toBeUndefined();
  });
});

describe("keeping, pruning and declaring go by namespace too", () => {
  it("keptRecords: an entry with a typo keeps what it applied in namespace a although it now also names x in b", () => {
    const [entry] = parseEntries([yaml("x", "b") + "---\nkind: Typo\n"]);
    expect(entry.errors).toHaveLength(1);
    expect(keptRecords([rec("x", "a"), rec("x", "b")], entry)).toEqual([rec("x", "a")]);
  });

  it("toPrune, writeAhead, mergeForRetry, declaredBy: x in a and x in b are two objects", () => {
    expect(toPrune([rec("x", "a"), rec("x", "b")], [rec("x", "b")])).toEqual([rec("x", "a")]);
    expect(toPrune([rec("x", undefined, "Pending")], [rec("x", "default")])).toEqual([]);
    expect(writeAhead([rec("x", "a")], parseEntries([yaml("x", "b")]))).toEqual([rec("x", "a"), rec("x", "b", "Pending")]);
    expect(mergeForRetry([rec("x", "a")], [rec("x", "b")]).map((r) => r.namespace)).toEqual(["b", "a"]);
    const keys = declaredKeys(parseEntries([yaml("x", "b"), yaml("y")]));
    expect([declaredBy(keys, rec("x", "a")), declaredBy(keys, rec("x", "b")), declaredBy(keys, rec("y", "default"))]).toEqual([false, true, true]);
  });
});

describe("placed: a spec object as the API server keeps it", () => {
  const role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "r", namespace: "elsewhere" } };
  const applied = { index: 0, apiVersion: role.apiVersion, kind: role.kind, name: "r", state: "Applied" } as AppliedObject;

  it("a cluster-scoped kind's namespace is dropped; a namespaced or unknown kind's is kept", () => {
    expect(placed(role, false).metadata).toEqual({ name: "r" });
    expect(placed(role, true)).toBe(role);
    expect(placed(role, undefined)).toBe(role);
    expect(placed(obj("x", "a"), true)).toEqual(obj("x", "a"));
  });

  it("placed, its Pending record is its Applied one (the API server's answer names no namespace): nothing to prune or record again", () => {
    const [entry] = parseEntries(["apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r, namespace: elsewhere}\n"]);
    const asWritten = writeAhead([applied], [entry])!;
    expect(toPrune(asWritten, [applied])).toEqual([{ ...applied, namespace: "elsewhere", state: "Pending" }]); // the object deleted after its apply
    const place = { ...entry, objects: entry.objects.map((o) => placed(o, false)) };
    expect(writeAhead([applied], [place])).toBeUndefined();
    expect(priorRecord([applied], place.objects[0])).toEqual(applied);
  });
});
