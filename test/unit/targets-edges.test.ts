// lib/remote/targets.ts edges the mutation run found untested: several former targets at once,
// records without a name, duplicate records, the exact condition texts.
import { describe, expect, it } from "vitest";
import { describeObjects, effectiveTarget, formerTargetsCondition, retarget } from "../../lib/remote/targets.ts";
import { appliedConfigMap as rec } from "../helpers/applied.ts";
import type { AppliedObject } from "../../lib/crds/manifests.ts";

const A = { serviceUUID: "a", secretRef: "s" };
const B = { serviceUUID: "b", secretRef: "s" };
const C = { serviceUUID: "c", secretRef: "s" };
const D = { serviceUUID: "d", secretRef: "s" };

describe("retarget with several former targets", () => {
  it("moving back to one keeps the others", () => {
    const r = retarget(
      {
        target: B,
        applied: [rec("y")],
        formerTargets: [
          { ...A, applied: [rec("x")] },
          { ...C, applied: [rec("z")] },
        ],
      },
      A,
    );
    expect(r).toEqual({
      applied: [rec("x")],
      formerTargets: [
        { ...C, applied: [rec("z")] },
        { ...B, applied: [rec("y")] },
      ],
    });
  });

  it("a target left for the first time is added after the others, which stay", () => {
    const r = retarget({ target: A, applied: [rec("x")], formerTargets: [{ ...C, applied: [rec("z")] }] }, D);
    expect(r).toEqual({
      applied: [],
      formerTargets: [
        { ...C, applied: [rec("z")] },
        { ...A, applied: [rec("x")] },
      ],
    });
  });

  it("a target left again merges with its earlier entry wherever it was, without duplicates", () => {
    const formers = [
      { ...A, applied: [rec("x"), rec("w")], message: "unreachable" },
      { ...C, applied: [rec("z")] },
    ];
    const r = retarget({ target: A, applied: [rec("x"), rec("v")], formerTargets: formers }, D);
    expect(r.formerTargets).toEqual([
      { ...C, applied: [rec("z")] },
      { ...A, applied: [rec("x"), rec("v"), rec("w")] },
    ]);
    // a record of the same name in another namespace or of another kind is another object; one
    // without a namespace is the default namespace's (placeKey): the same object
    const other: AppliedObject = { ...rec("x"), namespace: "ns2" };
    const cm = { ...rec("x"), kind: "Secret" };
    const unset: AppliedObject = { ...rec("x"), namespace: undefined };
    const r2 = retarget({ target: A, applied: [rec("x")], formerTargets: [{ ...A, applied: [other, cm, unset] }] }, D);
    expect(r2.formerTargets).toEqual([{ ...A, applied: [rec("x"), other, cm] }]);
  });

  it("nothing applied (failures, records without a name) leaves no former target", () => {
    const nameless: AppliedObject = { index: 1, state: "Applied" };
    expect(retarget({ target: A, applied: [rec("bad", "Failed"), nameless] }, B)).toEqual({ applied: [], formerTargets: [] });
    expect(retarget({ target: A, applied: [rec("x"), nameless] }, B).formerTargets).toEqual([{ ...A, applied: [rec("x")] }]);
    expect(retarget({ target: A }, B)).toEqual({ applied: [], formerTargets: [] });
  });
});

describe("messages", () => {
  it("objects with and without a namespace", () => {
    expect(describeObjects([rec("a"), { index: 0, kind: "Namespace", name: "n", state: "Applied" }])).toBe("ConfigMap default/a, Namespace n");
    expect(describeObjects([])).toBe("");
  });

  it("the condition, cleared and pending over two targets", () => {
    expect(formerTargetsCondition([])).toEqual({
      type: "FormerTargetsCleared",
      status: "True",
      reason: "Deleted",
      message: "no objects left in a former target",
    });
    expect(
      formerTargetsCondition([
        { ...A, applied: [rec("x")] },
        { ...B, applied: [rec("y")], message: "m" },
      ]),
    ).toEqual({
      type: "FormerTargetsCleared",
      status: "False",
      reason: "DeletePending",
      message:
        "ConfigMap default/x left in service a (token of Secret s); ConfigMap default/y left in service b (token of Secret s): m; retrying (annotate the Manifests entangle-proxy.kairos.io/orphan=true to leave them)",
    });
  });
});

describe("effectiveTarget", () => {
  it("the recorded target unless the same service's token is unchanged under a new secretRef", () => {
    const renamed = { serviceUUID: "a", secretRef: "renamed" };
    expect(effectiveTarget(A, { ...A }, { recorded: "t", current: "t" })).toBe(A);
    expect(effectiveTarget(A, renamed, {})).toBe(A);
    expect(effectiveTarget(A, renamed, { recorded: "t" })).toBe(A);
    expect(effectiveTarget(A, renamed, { current: "t" })).toBe(A);
    expect(effectiveTarget(A, renamed, { recorded: "t", current: "t" })).toBe(renamed);
    expect(effectiveTarget(A, { serviceUUID: "b", secretRef: "renamed" }, { recorded: "t", current: "t" })).toBe(A);
  });
});
