// An object removed from spec.manifests that the remote refuses (403) to let us delete, in the
// current target: retried MAX_REFUSALS times in a row, then no longer until the spec changes, as
// for a former target; the Pruned condition and one DeleteRefused Event say so (Ready stays True:
// every object of the spec is applied). test/e2e/manifests-namespaces.test.ts shows it for real.
import { describe, expect, it } from "vitest";
import type { AppliedObject, ManifestsStatus } from "../../lib/crds/manifests.ts";
import { leftByPrune, nextStatus, pruneGaveUpMessage, prunedCondition, pruneGivenUp } from "../../lib/remote/status.ts";
import { MAX_REFUSALS } from "../../lib/remote/targets.ts";
import type { ReadyCondition } from "../../lib/remote/outcome.ts";

const rec = (name: string): AppliedObject => ({ index: 0, apiVersion: "v1", kind: "ConfigMap", namespace: "default", name, state: "Applied" });
const FORBIDDEN = 'configmaps "x" is forbidden: User "u" cannot delete resource "configmaps" in API group "" in the namespace "default"';
const target = { serviceUUID: "foo", secretRef: "tok" };
const ok: ReadyCondition = { type: "Ready", status: "True", reason: "Applied", message: "1 object(s) applied to foo" };
const t0 = new Date("2026-11-27T10:00:00Z");

/** `n` prunes in a row, each refused, without a spec change. */
function refusedTimes(a: AppliedObject, n: number): AppliedObject {
  for (let i = 0; i < n; i++) a = leftByPrune(a, FORBIDDEN, true, false);
  return a;
}

describe("leftByPrune: the record of an object prune could not delete", () => {
  it("refusals in a row are counted up to the limit; another failure forgets them; a spec change starts again at 1", () => {
    expect(leftByPrune(rec("x"), FORBIDDEN, true, false)).toEqual({ ...rec("x"), message: `could not delete: ${FORBIDDEN}`, refusals: 1 });
    expect(pruneGivenUp(refusedTimes(rec("x"), MAX_REFUSALS - 1))).toBe(false);
    expect(pruneGivenUp(refusedTimes(rec("x"), MAX_REFUSALS))).toBe(true);
    expect(leftByPrune(refusedTimes(rec("x"), 3), "remote unreachable: reset", false, false)).toEqual({
      ...rec("x"),
      message: "could not delete: remote unreachable: reset",
    });
    expect(leftByPrune(refusedTimes(rec("x"), MAX_REFUSALS), FORBIDDEN, true, true).refusals).toBe(1);
  });
});

describe("prunedCondition and its Event", () => {
  it("True once nothing is left; DeletePending while some is retried; DeleteRefused when none is", () => {
    expect(prunedCondition([])).toMatchObject({ type: "Pruned", status: "True", reason: "Deleted" });
    const pending = prunedCondition([refusedTimes(rec("x"), 1), refusedTimes(rec("y"), MAX_REFUSALS)]);
    expect(pending).toMatchObject({ status: "False", reason: "DeletePending" });
    expect(pending.message).toMatch(/removed from spec.manifests, retrying$/);
    const stopped = prunedCondition([refusedTimes(rec("y"), MAX_REFUSALS)]);
    expect(stopped).toMatchObject({ status: "False", reason: "DeleteRefused" });
    expect(stopped.message).toBe(
      `ConfigMap default/y: could not delete: ${FORBIDDEN}; refused 5 times in a row, no longer retried; removed from spec.manifests but left in the remote cluster (grant get and delete on them there and change the Manifests' spec to retry)`,
    );
    expect(pruneGaveUpMessage([refusedTimes(rec("y"), MAX_REFUSALS)], target)).toBe(
      `ConfigMap default/y removed from spec.manifests but left in service foo (token of Secret tok): could not delete: ${FORBIDDEN}; refused 5 times in a row, no longer retried (grant get and delete on them there and change the Manifests' spec to retry)`,
    );
  });

  it("nextStatus: Pruned appears once a prune leaves something, turns True when it is gone, and is kept by a reconcile that pruned nothing", () => {
    const types = (s: Pick<ManifestsStatus, "conditions"> | undefined) => s?.conditions?.map((c) => `${c.type}=${c.status}`);
    expect(types(nextStatus(undefined, 1, ok, [rec("a")], target, [], t0, []))).toEqual(["Ready=True"]);
    const left = refusedTimes(rec("x"), 1);
    const refused = nextStatus(undefined, 1, ok, [rec("a"), left], target, [], t0, [left]) as ManifestsStatus;
    expect(types(refused)).toEqual(["Ready=True", "Pruned=False"]);
    expect(refused.executed).toBe(true);
    // a reconcile cut short (no prune tried) leaves the condition as it was
    expect(nextStatus(refused, 1, ok, [rec("a"), left], target, [], t0)).toBeUndefined();
    expect(types(nextStatus(refused, 1, ok, [rec("a")], target, [], t0))).toEqual(["Ready=True", "Pruned=False"]);
    expect(types(nextStatus(refused, 2, ok, [rec("a")], target, [], t0, []))).toEqual(["Ready=True", "Pruned=True"]);
  });
});
