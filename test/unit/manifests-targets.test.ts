import { describe, expect, it } from "vitest";
import { describeTarget, effectiveTarget, formerTargetsCondition, retarget, sameTarget, targetOf } from "../../lib/remote/targets.ts";
import { appliedConfigMap } from "../helpers/applied.ts";

const rec = appliedConfigMap;
const A = { serviceUUID: "a", secretRef: "s" };
const B = { serviceUUID: "b", secretRef: "s" };

describe("Manifests targets", () => {
  it("an unchanged target keeps its records; a status without a target is taken to be in the current one", () => {
    expect(retarget({ target: A, applied: [rec("x")] }, A)).toEqual({ applied: [rec("x")], formerTargets: [] });
    expect(retarget({ applied: [rec("x")] }, B)).toEqual({ applied: [rec("x")], formerTargets: [] });
    expect(retarget(undefined, A)).toEqual({ applied: [], formerTargets: [] });
  });

  it("a new serviceUUID or secretRef moves the applied records (not the failures) to formerTargets", () => {
    const moved = retarget({ target: A, applied: [rec("x"), rec("bad", "Failed")] }, B);
    expect(moved).toEqual({ applied: [], formerTargets: [{ ...A, applied: [rec("x")] }] });
    const bySecret = retarget({ target: A, applied: [rec("x")] }, { serviceUUID: "a", secretRef: "other" });
    expect(bySecret.formerTargets).toEqual([{ ...A, applied: [rec("x")] }]);
  });

  it("moving back to a former target takes its records back; a target left twice merges its records", () => {
    const back = retarget({ target: B, applied: [rec("y")], formerTargets: [{ ...A, applied: [rec("x")], message: "unreachable" }] }, A);
    expect(back).toEqual({ applied: [rec("x")], formerTargets: [{ ...B, applied: [rec("y")] }] });
    const C = { serviceUUID: "c", secretRef: "s" };
    const again = retarget({ target: A, applied: [rec("x2")], formerTargets: [{ ...A, applied: [rec("x")] }] }, C);
    expect(again.formerTargets).toEqual([{ ...A, applied: [rec("x2"), rec("x")] }]);
  });

  it("a new secretRef with the same token for the same service is the same cluster", () => {
    const current = { serviceUUID: "a", secretRef: "renamed" };
    expect(effectiveTarget(A, current, { recorded: "t", current: "t" })).toEqual(current);
    expect(effectiveTarget(A, current, { recorded: "t", current: "u" })).toEqual(A);
    expect(effectiveTarget(A, current, { recorded: undefined, current: "t" })).toEqual(A);
    expect(effectiveTarget(A, B, { recorded: "t", current: "t" })).toEqual(A);
    expect(effectiveTarget(undefined, A, {})).toBeUndefined();
  });

  it("the condition names what is left where, never a token", () => {
    expect(formerTargetsCondition([])).toMatchObject({ type: "FormerTargetsCleared", status: "True" });
    const c = formerTargetsCondition([{ ...A, applied: [rec("x"), rec("y")], message: "Secret default/s not found" }]);
    expect(c).toMatchObject({ status: "False", reason: "DeletePending" });
    expect(c.message).toBe(
      "ConfigMap default/x, ConfigMap default/y left in service a (token of Secret s): Secret default/s not found; retrying (annotate the Manifests entangle-proxy.kairos.io/orphan=true to leave them)",
    );
    expect(describeTarget(targetOf({ serviceUUID: "a", secretRef: "s" }))).toBe("service a (token of Secret s)");
    expect(sameTarget(A, { ...A })).toBe(true);
  });
});
