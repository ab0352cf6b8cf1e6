// A re-apply that fails: the object applied before is still in the remote cluster, carrying our
// owner annotation. Its Failed record keeps it "may exist" (appliedBefore), so prune, the
// finalizer and a retarget still find it (test/e2e/manifests.test.ts shows it for real).
import { describe, expect, it } from "vitest";
import type { AppliedObject } from "../../lib/crds/manifests.ts";
import { keptRecords, mayExist, OWNER_ANNOTATION, parseEntries, toPrune, writeAhead } from "../../lib/remote/manifests.ts";
import { deletionTargets, mergeForRetry } from "../../lib/remote/outcome.ts";
import { deleteClaim, failedRecord, priorRecord } from "../../lib/remote/status.ts";
import { retarget } from "../../lib/remote/targets.ts";

const rec = (name: string, state: AppliedObject["state"] = "Applied", namespace: string | undefined = "default", extra: Partial<AppliedObject> = {}) =>
  ({ index: 0, apiVersion: "v1", kind: "ConfigMap", namespace, name, state, ...extra }) as AppliedObject;
const obj = (name: string, namespace?: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace } });
const ref = (name: string, namespace?: string) => rec(name, "Applied", namespace);
const names = (records: AppliedObject[]) => records.map((r) => `${r.name}:${r.state}${r.appliedBefore ? "+" : ""}`);
const A = { serviceUUID: "a", secretRef: "s" };

describe("failedRecord: the record of an apply that failed", () => {
  it("seen there carrying our annotation: may exist, in the namespace it was seen in", () => {
    expect(failedRecord(ref("a"), "422", undefined, { seen: "ours", namespace: "default" })).toEqual({
      ...rec("a", "Failed", "default"),
      message: "422",
      appliedBefore: true,
    });
  });

  it("nothing seen (a read that failed, contact lost): may exist if applied before, with the namespace of that record", () => {
    expect(failedRecord(ref("a"), "500", rec("a", "Applied", "default"), { seen: "unknown" })).toMatchObject({ namespace: "default", appliedBefore: true });
    const again = failedRecord(ref("a"), "500", rec("a", "Failed", "default", { appliedBefore: true }), { seen: "unknown" });
    expect(again).toMatchObject({ state: "Failed", namespace: "default", appliedBefore: true });
    // a Pending record alone is no apply: an object the remote refuses to read and to create is not looked for later
    expect(failedRecord(ref("a"), "403", undefined, { seen: "unknown" }).appliedBefore).toBeUndefined();
  });

  it("seen absent, or someone else's: a plain failure, whatever was applied before", () => {
    expect(failedRecord(ref("a"), "no kind", rec("a"), { seen: "absent" })).toEqual({ ...rec("a", "Failed", undefined), message: "no kind" });
    expect(failedRecord(ref("a"), "taken", rec("a"), { seen: "theirs" }).appliedBefore).toBeUndefined();
  });
});

describe("priorRecord: one look for the record that says it was applied", () => {
  it("the Applied record first, else a Failed one applied before; a plain failure or a Pending record is none", () => {
    const flagged = rec("a", "Failed", "default", { appliedBefore: true });
    expect(priorRecord([flagged, rec("a")], obj("a"))).toEqual(rec("a"));
    expect(priorRecord([rec("a", "Failed"), flagged], obj("a"))).toBe(flagged);
    expect(priorRecord([rec("a", "Failed"), rec("a", "Pending")], obj("a"))).toBeUndefined();
    expect(priorRecord([rec("b")], obj("a"))).toBeUndefined();
  });

  it("only an Applied record vouches for an object without our annotation (claimOf, deleteClaim)", () => {
    const flagged = rec("a", "Failed", "default", { appliedBefore: true });
    expect(priorRecord([flagged], obj("a"))?.state).not.toBe("Applied");
    const foreign = { metadata: { annotations: {} } };
    expect(deleteClaim(foreign, "default/m", flagged).mine).toBe(false);
    expect(deleteClaim({ metadata: { annotations: { [OWNER_ANNOTATION]: "default/m" } } }, "default/m", flagged).mine).toBe(true);
  });
});

describe("a Failed record applied before may exist remotely", () => {
  const flagged = rec("a", "Failed", "default", { appliedBefore: true, message: "422" });

  it("is pruned once the spec drops it, kept while declared", () => {
    expect(mayExist(flagged)).toBe(true);
    expect(mayExist(rec("a", "Failed"))).toBe(false);
    expect(names(toPrune([flagged, rec("b")], [rec("b")]))).toEqual(["a:Failed+"]);
    expect(toPrune([flagged], [rec("a", "Failed", undefined)])).toEqual([]);
  });

  it("is deleted with the CR, moves with a retarget, and is kept by an entry that no longer parses", () => {
    expect(deletionTargets({ applied: [flagged, rec("b", "Failed")], target: A }, A)).toEqual([{ ...A, applied: [flagged] }]);
    expect(retarget({ target: A, applied: [flagged] }, { serviceUUID: "b", secretRef: "s" }).formerTargets).toEqual([{ ...A, applied: [flagged] }]);
    const [broken] = parseEntries(["kind: [unclosed"]);
    expect(keptRecords([flagged], broken)).toEqual([flagged]);
  });

  it("needs no write-ahead, and does not pile up through reconciles cut short", () => {
    expect(writeAhead([flagged], parseEntries(["apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"]))).toBeUndefined();
    const lost = { ...flagged, message: "remote unreachable" };
    let status = mergeForRetry([rec("a")], [lost]);
    expect(names(status)).toEqual(["a:Applied", "a:Failed+"]);
    for (let i = 0; i < 3; i++) status = mergeForRetry(status, [lost]);
    expect(names(status)).toEqual(["a:Applied", "a:Failed+"]);
    expect(names(mergeForRetry([flagged], [lost]))).toEqual(["a:Failed+"]);
  });
});
