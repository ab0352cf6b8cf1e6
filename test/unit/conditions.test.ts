// lib/crds/conditions.ts setCondition: lists holding several types, the timestamp format, the
// cases where lastTransitionTime moves.
import { describe, expect, it } from "vitest";
import { setCondition, type Condition } from "../../lib/crds/conditions.ts";

const t1 = new Date("2026-01-01T00:00:00.123Z");
const t2 = new Date("2026-01-02T00:00:00.987Z");
const ready = (status: Condition["status"], extra: Partial<Condition> = {}): Condition => ({ type: "Ready", status, reason: "R", message: "m", ...extra });

describe("setCondition", () => {
  it("an empty or absent list gets the condition, stamped to the second", () => {
    expect(setCondition(undefined, ready("True"), t1)).toEqual([{ ...ready("True"), lastTransitionTime: "2026-01-01T00:00:00Z" }]);
    expect(setCondition([], ready("True"), t1)).toEqual([{ ...ready("True"), lastTransitionTime: "2026-01-01T00:00:00Z" }]);
  });

  it("replaces only its own type, in place, leaving the others and the input list alone", () => {
    const other: Condition = { type: "Synced", status: "False", reason: "S", message: "s", lastTransitionTime: "2025-01-01T00:00:00Z" };
    const list = [setCondition(undefined, ready("False"), t1)[0], other];
    const before = structuredClone(list);
    const next = setCondition(list, ready("True", { reason: "Up" }), t2);
    expect(next).toEqual([{ ...ready("True", { reason: "Up" }), lastTransitionTime: "2026-01-02T00:00:00Z" }, other]);
    expect(list).toEqual(before);
    expect(next[1]).toBe(other);
    // a type not yet in the list goes last
    const added = setCondition([other], ready("True"), t2);
    expect(added.map((c) => c.type)).toEqual(["Synced", "Ready"]);
    expect(added[0]).toBe(other);
  });

  it("keeps the time while the status stays, unless the old one had none", () => {
    const a = setCondition(undefined, ready("False"), t1);
    expect(setCondition(a, ready("False", { reason: "Y" }), t2)[0].lastTransitionTime).toBe("2026-01-01T00:00:00Z");
    expect(setCondition(a, ready("Unknown"), t2)[0].lastTransitionTime).toBe("2026-01-02T00:00:00Z");
    expect(setCondition([ready("False")], ready("False"), t2)[0].lastTransitionTime).toBe("2026-01-02T00:00:00Z");
  });

  it("a caller's lastTransitionTime is replaced, milliseconds or not", () => {
    expect(setCondition(undefined, ready("True", { lastTransitionTime: "1999-01-01T00:00:00Z" }), t1)[0].lastTransitionTime).toBe("2026-01-01T00:00:00Z");
    expect(setCondition(undefined, ready("True"), new Date("2026-03-04T05:06:07Z"))[0].lastTransitionTime).toBe("2026-03-04T05:06:07Z");
  });
});
