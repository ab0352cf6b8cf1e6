// The write-ahead record of the Manifests controller: objects are recorded Pending before their
// apply, so a module killed between an apply and its status write leaves no object unknown to
// prune, the finalizer or a retarget (test/e2e/chaos.test.ts kills it there for real).
import { describe, expect, it } from "vitest";
import type { AppliedObject } from "../../lib/crds/manifests.ts";
import { keptRecords, OWNER_ANNOTATION, parseEntries, toPrune, writeAhead } from "../../lib/remote/manifests.ts";
import { deletionTargets, mergeForRetry } from "../../lib/remote/outcome.ts";
import { aheadStatus, deleteClaim, nextStatus } from "../../lib/remote/status.ts";
import { retarget } from "../../lib/remote/targets.ts";

const cm = (name: string, ns?: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}${ns ? `, namespace: ${ns}` : ""}}\n`;
const rec = (name: string, state: AppliedObject["state"] = "Applied", namespace: string | undefined = "default", index = 0): AppliedObject => ({
  index,
  apiVersion: "v1",
  kind: "ConfigMap",
  namespace,
  name,
  state,
});
const names = (records: AppliedObject[]) => records.map((r) => `${r.name}:${r.state}`);
const A = { serviceUUID: "a", secretRef: "s" };
const ready = { type: "Ready", status: "True" as const, reason: "Applied", message: "ok" };

describe("writeAhead: what is recorded Pending before the apply", () => {
  it("a first reconcile records every object Pending; a resync or an edit of recorded objects writes nothing", () => {
    expect(writeAhead([], parseEntries([cm("a", "default") + "---\n" + cm("b", "default")]))).toEqual([rec("a", "Pending"), rec("b", "Pending")]);
    const applied = [rec("a"), rec("b")];
    expect(writeAhead(applied, parseEntries([cm("a", "default") + "---\n" + cm("b", "default")]))).toBeUndefined();
    expect(writeAhead(applied, parseEntries([cm("a", "default")]))).toBeUndefined(); // an object dropped
    expect(writeAhead([], parseEntries(["kind: [unclosed"]))).toBeUndefined(); // nothing to apply
  });

  it("an added object: the records so far plus it, Pending (failures kept as they are)", () => {
    const previous = [rec("a"), { index: 1, state: "Failed" as const, message: "invalid YAML" }];
    expect(writeAhead(previous, parseEntries([cm("a", "default"), cm("b", "default")]))).toEqual([...previous, rec("b", "Pending", "default", 1)]);
  });

  it("an object without a namespace is the record of it in default (or cluster-scoped); another namespace is new", () => {
    expect(writeAhead([rec("a")], parseEntries([cm("a")]))).toBeUndefined();
    expect(writeAhead([rec("a", "Pending", undefined)], parseEntries([cm("a")]))).toBeUndefined();
    expect(writeAhead([rec("a", "Applied", undefined)], parseEntries([cm("a")]))).toBeUndefined();
    expect(names(writeAhead([rec("a")], parseEntries([cm("a", "other")]))!)).toEqual(["a:Applied", "a:Pending"]);
  });

  it("an object failing at every resync is known: no write-ahead (two writes per resync) for it", () => {
    expect(writeAhead([rec("a", "Failed", undefined)], parseEntries([cm("a")]))).toBeUndefined();
  });
});

describe("a Pending record left by a killed module", () => {
  // killed after applying a and b of [a, b, c]: status.applied holds the write-ahead record
  const crashed = writeAhead([], parseEntries([cm("a") + "---\n" + cm("b") + "---\n" + cm("c")]))!;

  it("is pruned once the spec drops it, and kept while declared (its namespace resolved to default by the apply)", () => {
    const now = [rec("a", "Applied", "default")]; // the spec keeps a only
    expect(names(toPrune(crashed, now))).toEqual(["b:Pending", "c:Pending"]);
  });

  it("is deleted with the CR, and moves with a retarget", () => {
    expect(deletionTargets({ applied: crashed, target: A }, A)).toEqual([{ ...A, applied: crashed }]);
    const moved = retarget({ target: A, applied: crashed }, { serviceUUID: "b", secretRef: "s" });
    expect(moved.formerTargets).toEqual([{ ...A, applied: crashed }]);
  });

  it("is kept by an entry that no longer parses, and through a reconcile cut short", () => {
    const [broken] = parseEntries([cm("a") + "---\napiVersion: v1\nkind: Pod\nmetadata: {}\n"]);
    expect(names(keptRecords(crashed, broken))).toEqual(["b:Pending", "c:Pending"]);
    const now = [rec("a", "Applied", "default"), rec("b", "Failed", undefined)];
    expect(names(mergeForRetry(crashed, now))).toEqual(["a:Applied", "b:Pending", "c:Pending", "b:Failed"]);
  });

  it("deletes only an object that carries our annotation: someone else's object is never deleted for it", () => {
    const ours = { metadata: { annotations: { [OWNER_ANNOTATION]: "default/m" } } };
    const foreign = { metadata: { annotations: {} } };
    expect(deleteClaim(ours, "default/m", rec("b", "Pending", undefined)).mine).toBe(true);
    expect(deleteClaim(foreign, "default/m", rec("b", "Pending", undefined)).mine).toBe(false);
    // an Applied record still vouches for an object made before the annotation existed
    expect(deleteClaim(foreign, "default/m", rec("b")).mine).toBe(true);
    expect(deleteClaim({ metadata: { annotations: { [OWNER_ANNOTATION]: "default/other" } } }, "default/m", rec("b", "Pending")).mine).toBe(false);
  });
});

describe("the final status after a write-ahead", () => {
  it("replaces every Pending record and is written even when it equals the status before the write-ahead", () => {
    const old = { observedGeneration: 1, applied: [rec("a", "Failed", undefined)], target: A };
    const ahead = aheadStatus(old, [rec("a", "Failed", undefined), rec("b", "Pending", undefined)], A, []);
    expect(ahead.patch).toEqual({ applied: [rec("a", "Failed", undefined), rec("b", "Pending", undefined)], target: A, formerTargets: null, appliedCount: 0 });
    expect(ahead.status).toMatchObject({ observedGeneration: 1, applied: ahead.patch.applied });
    const final = [rec("a", "Failed", undefined), rec("b", "Failed", undefined)];
    const written = nextStatus(ahead.status, 2, ready, final, A, []);
    expect(written?.applied).toEqual(final);
    expect(written?.appliedCount).toBe(0);
  });

  it("counts only Applied records (the printer column): Pending is not applied", () => {
    expect(aheadStatus(undefined, [rec("a"), rec("b", "Pending")], A, []).patch.appliedCount).toBe(1);
  });
});

describe("toPrune: an unset namespace is default", () => {
  it("a record applied in default is not pruned when this run's Failed record of it names no namespace", () => {
    expect(toPrune([rec("a")], [rec("a", "Failed", undefined)])).toEqual([]);
  });
});
