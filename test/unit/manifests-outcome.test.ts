// The Manifests controller's decisions (lib/remote/outcome.ts): the Ready condition, what is
// kept when contact is lost, where deletion looks, and how API errors are read.
import { describe, expect, it } from "vitest";
import { appliedCondition, deletionTargets, mergeForRetry, remoteMessage, unreachable } from "../../lib/remote/outcome.ts";
import type { AppliedObject } from "../../lib/crds/index.ts";

const cm = (name: string, state: "Applied" | "Failed" = "Applied", message?: string): AppliedObject => ({
  index: 0,
  apiVersion: "v1",
  kind: "ConfigMap",
  namespace: "default",
  name,
  state,
  ...(message ? { message } : {}),
});

describe("appliedCondition", () => {
  it("nothing failed: Ready True, counting every record", () => {
    expect(appliedCondition([cm("a"), cm("b")], [], "foo")).toEqual({
      type: "Ready",
      status: "True",
      reason: "Applied",
      message: "2 object(s) applied to foo",
    });
    expect(appliedCondition([], [], "foo")).toMatchObject({ status: "True", message: "0 object(s) applied to foo" });
  });

  it("a failure: ApplyFailed naming the first one and the counts", () => {
    expect(appliedCondition([cm("a"), cm("b", "Failed", "denied"), cm("c", "Failed", "later")], [], "foo")).toEqual({
      type: "Ready",
      status: "False",
      reason: "ApplyFailed",
      message: "2 of 3 failed: denied",
    });
  });

  it("an ownership conflict wins over other failures, and is the one named", () => {
    expect(appliedCondition([cm("a", "Failed", "denied"), cm("b", "Failed", "owned by x")], ["owned by x", "owned by y"], "foo")).toEqual({
      type: "Ready",
      status: "False",
      reason: "OwnershipConflict",
      message: "2 of 2 failed: owned by x",
    });
  });
});

describe("mergeForRetry", () => {
  it("applied now first, then applied before and not seen now, then failures; earlier failures are dropped", () => {
    const previous = [cm("old"), cm("both"), cm("was-failed", "Failed", "x")];
    const now = [cm("lost", "Failed", "remote unreachable"), cm("both"), cm("new")];
    expect(mergeForRetry(previous, now).map((a) => [a.name, a.state])).toEqual([
      ["both", "Applied"],
      ["new", "Applied"],
      ["old", "Applied"],
      ["lost", "Failed"],
    ]);
  });

  it("an object failed now but applied before keeps its applied record (it is still there)", () => {
    expect(mergeForRetry([cm("a")], [cm("a", "Failed", "unreachable")]).map((a) => a.state)).toEqual(["Applied", "Failed"]);
    expect(mergeForRetry(undefined, [cm("a")])).toEqual([cm("a")]);
  });
});

describe("deletionTargets", () => {
  const spec = { serviceUUID: "now", secretRef: "s" };
  it("the recorded target with its applied, named objects, then former targets; empty ones left out", () => {
    const status = {
      target: { serviceUUID: "recorded", secretRef: "r" },
      applied: [cm("a"), cm("f", "Failed", "x"), { index: 1, state: "Failed" as const, message: "bad yaml" }],
      formerTargets: [
        { serviceUUID: "old", secretRef: "o", applied: [cm("b")] },
        { serviceUUID: "empty", secretRef: "e", applied: [] },
      ],
    };
    expect(deletionTargets(status, spec)).toEqual([
      { serviceUUID: "recorded", secretRef: "r", applied: [cm("a")] },
      { serviceUUID: "old", secretRef: "o", applied: [cm("b")] },
    ]);
  });

  it("no recorded target: the spec's; nothing applied anywhere: nothing to delete", () => {
    expect(deletionTargets({ applied: [cm("a")] }, spec)).toEqual([{ ...spec, applied: [cm("a")] }]);
    expect(deletionTargets(undefined, spec)).toEqual([]);
    expect(deletionTargets({ applied: [{ ...cm("x"), name: "" }] }, spec)).toEqual([]);
  });
});

describe("API errors", () => {
  it("unreachable: a connection refused, reset or timed out, or a system FetchError; not an HTTP answer nor any other error", () => {
    expect(unreachable(Object.assign(new Error("x"), { code: "ECONNREFUSED" }))).toBe(true);
    for (const code of ["ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED", "ENOTFOUND", "EAI_AGAIN"])
      expect(unreachable({ code }), code).toBe(true);
    expect(unreachable({ name: "FetchError", type: "system", message: "request failed, reason: socket hang up" })).toBe(true);
    // a fault of ours or a garbled answer is that object's failure, not a lost remote
    expect(unreachable(new TypeError("cannot read properties of undefined"))).toBe(false);
    expect(unreachable(new Error("socket hang up"))).toBe(false);
    expect(unreachable({ name: "FetchError", type: "invalid-json" })).toBe(false);
    expect(unreachable({ name: "SyntaxError", type: "system" })).toBe(false);
    expect(unreachable({ code: "EACCES" })).toBe(false);
    expect(unreachable(undefined)).toBe(false);
    expect(unreachable("ECONNRESET")).toBe(false);
    expect(unreachable({ code: 403 })).toBe(false);
    expect(unreachable({ code: "ECONNRESET", body: { message: "m" } })).toBe(false);
    expect(unreachable({ name: "FetchError", type: "system", code: 503 })).toBe(false);
    expect(unreachable({ body: "text" })).toBe(false);
  });

  it("remoteMessage: the Status body's message, else the body, else the error's message", () => {
    expect(remoteMessage({ body: JSON.stringify({ message: "forbidden: no" }) })).toBe("forbidden: no");
    expect(remoteMessage({ body: JSON.stringify({ kind: "Status" }) })).toBe('{"kind":"Status"}');
    expect(remoteMessage({ body: "plain text" })).toBe("plain text");
    expect(remoteMessage({ body: { message: "from object" } })).toBe("from object");
    expect(remoteMessage({ body: { code: 1 } })).toBe('{"code":1}');
    expect(remoteMessage(new Error("boom"))).toBe("boom");
    expect(remoteMessage({ body: "", message: "empty body" })).toBe("empty body");
  });
});
