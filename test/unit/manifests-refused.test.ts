// A former target that refuses (403) to let us read or delete what we left there: retried
// MAX_REFUSALS times in a row, then no longer until the spec changes, with a condition and an
// Event that name the objects, the target and the refusal (test/e2e/manifests.test.ts for real).
import { describe, expect, it } from "vitest";
import type { AppliedObject, FormerTarget } from "../../lib/crds/manifests.ts";
import { afterAttempt, formerTargetsCondition, gaveUpMessage, givenUp, MAX_REFUSALS } from "../../lib/remote/targets.ts";

const rec = (name: string): AppliedObject => ({ index: 0, apiVersion: "v1", kind: "ConfigMap", namespace: "default", name, state: "Applied" });
const A = { serviceUUID: "a", secretRef: "s" };
const FORBIDDEN = 'configmaps "x" is forbidden: User "u" cannot get resource "configmaps" in API group "" in the namespace "default"';
const refused = { problem: FORBIDDEN, refused: true };

/** `n` attempts in a row, each refused, starting from `former`. */
function attempts(former: FormerTarget, n: number, outcome = refused): FormerTarget {
  let f = former;
  for (let i = 0; i < n; i++) f = afterAttempt(f, f.applied, outcome, false)!;
  return f;
}

describe("afterAttempt: a former target after one attempt", () => {
  it("nothing left: gone", () => {
    expect(afterAttempt({ ...A, applied: [rec("x")] }, [], refused, false)).toBeUndefined();
  });

  it("refusals in a row are counted up to the limit; any other outcome forgets them", () => {
    const start: FormerTarget = { ...A, applied: [rec("x")] };
    expect(attempts(start, 1)).toEqual({ ...A, applied: [rec("x")], message: FORBIDDEN, refusals: 1 });
    expect(givenUp(attempts(start, MAX_REFUSALS - 1))).toBe(false);
    expect(givenUp(attempts(start, MAX_REFUSALS))).toBe(true);
    const unreachable = afterAttempt(attempts(start, 3), [rec("x")], { problem: "remote unreachable: reset", refused: false }, false)!;
    expect(unreachable.refusals).toBeUndefined();
    expect(givenUp(attempts(start, 100, { problem: "remote unreachable: reset", refused: false }))).toBe(false);
  });

  it("a spec change counts from 1 again", () => {
    const stopped = attempts({ ...A, applied: [rec("x")] }, MAX_REFUSALS);
    expect(afterAttempt(stopped, stopped.applied, refused, true)!.refusals).toBe(1);
  });
});

describe("what the user reads", () => {
  it("given up: the Event and the condition name the objects, the target, the refusal and what to do", () => {
    const stopped = attempts({ ...A, applied: [rec("x")] }, MAX_REFUSALS);
    expect(gaveUpMessage(stopped)).toBe(
      `ConfigMap default/x left in service a (token of Secret s): ${FORBIDDEN}; refused 5 times in a row, no longer retried ` +
        "(grant get and delete on them there and change the Manifests' spec to retry, or annotate the Manifests entangle-proxy.kairos.io/orphan=true to leave them)",
    );
    const c = formerTargetsCondition([stopped]);
    expect(c).toMatchObject({ status: "False", reason: "DeleteRefused" });
    expect(c.message).toBe(
      `ConfigMap default/x left in service a (token of Secret s): ${FORBIDDEN}; refused 5 times in a row, no longer retried; ` +
        "grant get and delete on them there and change the Manifests' spec to retry, or annotate the Manifests entangle-proxy.kairos.io/orphan=true to leave them",
    );
  });

  it("while one former target is still retried, the condition says DeletePending", () => {
    const stopped = attempts({ ...A, applied: [rec("x")] }, MAX_REFUSALS);
    const c = formerTargetsCondition([stopped, { serviceUUID: "b", secretRef: "s", applied: [rec("y")], message: "remote unreachable: reset" }]);
    expect(c.reason).toBe("DeletePending");
    expect(c.message).toMatch(/refused 5 times in a row, no longer retried; ConfigMap default\/y left in service b .*; retrying \(annotate/);
  });
});
