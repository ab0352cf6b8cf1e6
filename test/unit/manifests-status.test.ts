// The Manifests controller's status and prune decisions (lib/remote/status.ts): the status a
// reconcile writes and when it writes none, Ready changes, retry delays, what prune and
// finalize leave in place and the orphan warning.
import { describe, expect, it } from "vitest";
import { leaveReason, nextRetryDelay, nextStatus, orphanedMessage, readyChanged, priorRecord, settledEvent } from "../../lib/remote/status.ts";
import type { ManifestsStatus } from "../../lib/crds/index.ts";
import { appliedConfigMap } from "../helpers/applied.ts";
import type { FormerTarget } from "../../lib/crds/manifests.ts";
import type { ReadyCondition } from "../../lib/remote/outcome.ts";

const cm = appliedConfigMap;
const target = { serviceUUID: "foo", secretRef: "tok" };
const ok: ReadyCondition = { type: "Ready", status: "True", reason: "Applied", message: "1 object(s) applied to foo" };
const failed: ReadyCondition = { type: "Ready", status: "False", reason: "ApplyFailed", message: "1 of 1 failed: no" };
const t0 = new Date("2026-11-26T10:00:00.123Z");
const t1 = new Date("2026-11-26T11:00:00.456Z");
const former: FormerTarget = { serviceUUID: "old", secretRef: "tok", applied: [cm("x")], message: "unreachable" };

describe("nextStatus", () => {
  it("a first reconcile writes everything, with lastSync and the condition's time", () => {
    expect(nextStatus(undefined, 3, ok, [cm("a"), cm("b", "Failed")], target, [], t0)).toEqual({
      observedGeneration: 3,
      conditions: [{ ...ok, observedGeneration: 3, lastTransitionTime: "2026-11-26T10:00:00Z" }],
      applied: [cm("a"), cm("b", "Failed")],
      target,
      formerTargets: null,
      appliedCount: 1,
      executed: true,
      lastSync: "2026-11-26T10:00:00.123Z",
    });
  });

  it("the same outcome again writes nothing (no watch-event loop), whatever lastSync says", () => {
    const first = nextStatus(undefined, 3, ok, [cm("a")], target, [], t0)!;
    const readBack = JSON.parse(JSON.stringify({ ...first, formerTargets: undefined })) as ManifestsStatus;
    expect(nextStatus(readBack, 3, ok, [cm("a")], target, [], t1)).toBeUndefined();
  });

  it("any change is written, keeping the condition's time while its status holds", () => {
    const first = nextStatus(undefined, 3, ok, [cm("a")], target, [], t0)! as ManifestsStatus;
    const more = nextStatus(first, 3, ok, [cm("a"), cm("b")], target, [], t1)!;
    expect(more.appliedCount).toBe(2);
    expect(more.lastSync).toBe("2026-11-26T11:00:00.456Z");
    expect(more.conditions![0].lastTransitionTime).toBe("2026-11-26T10:00:00Z");
    expect(nextStatus(first, 4, ok, [cm("a")], target, [], t1)!.observedGeneration).toBe(4);
    expect(nextStatus(first, 3, ok, [cm("a")], { ...target, secretRef: "other" }, [], t1)!.target).toEqual({ ...target, secretRef: "other" });
    const down = nextStatus(first, 3, failed, [cm("a", "Failed")], target, [], t1)!;
    expect(down.conditions![0]).toMatchObject({ status: "False", lastTransitionTime: "2026-11-26T11:00:00Z" });
    expect([down.executed, down.appliedCount]).toEqual([false, 0]);
  });

  it("former targets: listed with FormerTargetsCleared False; once cleared, null and the condition True", () => {
    const moving = nextStatus(undefined, 1, ok, [cm("a")], target, [former], t0)!;
    expect(moving.formerTargets).toEqual([former]);
    expect(moving.conditions!.map((c) => [c.type, c.status])).toEqual([
      ["Ready", "True"],
      ["FormerTargetsCleared", "False"],
    ]);
    const cleared = nextStatus(moving as ManifestsStatus, 1, ok, [cm("a")], target, [], t1)!;
    expect(cleared.formerTargets).toBeNull();
    expect(cleared.conditions!.map((c) => [c.type, c.status, c.observedGeneration])).toEqual([
      ["Ready", "True", 1],
      ["FormerTargetsCleared", "True", 1],
    ]);
    // a CR that never moved never gets the condition
    expect(nextStatus(undefined, 1, ok, [], target, [], t0)!.conditions!.map((c) => c.type)).toEqual(["Ready"]);
  });
});

describe("small decisions", () => {
  it("readyChanged: status or reason differs from the recorded Ready (other conditions ignored)", () => {
    const with_ = (c: Partial<ReadyCondition>[]): ManifestsStatus => ({ conditions: c as ManifestsStatus["conditions"] });
    expect(readyChanged(undefined, ok)).toBe(true);
    expect(readyChanged(with_([{ type: "FormerTargetsCleared", status: "True", reason: "Applied" }]), ok)).toBe(true);
    expect(readyChanged(with_([{ ...ok, message: "other" }]), ok)).toBe(false);
    expect(readyChanged(with_([{ ...ok, reason: "Other" }]), ok)).toBe(true);
    expect(readyChanged(with_([{ ...ok, status: "False" }]), ok)).toBe(true);
  });

  it("nextRetryDelay: 2 s, doubling, at most 30 s", () => {
    expect([nextRetryDelay(undefined), nextRetryDelay(2_000), nextRetryDelay(8_000), nextRetryDelay(16_000), nextRetryDelay(30_000)]).toEqual([
      2_000, 4_000, 16_000, 30_000, 30_000,
    ]);
  });

  it("priorRecord: same apiVersion, kind and name, state Applied", () => {
    const obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" } };
    const applied = (previous: ReturnType<typeof cm>[]) => priorRecord(previous, obj)?.state === "Applied";
    expect(applied([cm("a")])).toBe(true);
    expect(applied([cm("a", "Failed")])).toBe(false);
    expect(applied([{ ...cm("a"), kind: "Secret" }])).toBe(false);
    expect(applied([{ ...cm("a"), apiVersion: "v2" }])).toBe(false);
    expect(applied([cm("b")])).toBe(false);
    expect(applied([])).toBe(false);
  });

  it("leaveReason: another owner's message, else still declared by another CR, else delete", () => {
    expect(leaveReason({ mine: false, message: "is declared by Manifests ns/x: left to it" }, false, cm("a"))).toBe(
      "is declared by Manifests ns/x: left to it",
    );
    expect(leaveReason({ mine: true }, true, cm("a"))).toBe("ConfigMap default/a is still declared by another Manifests: left in place");
    expect(leaveReason({ mine: true }, true, { ...cm("ns"), namespace: undefined })).toBe("ConfigMap ns is still declared by another Manifests: left in place");
    expect(leaveReason({ mine: true }, false, cm("a"))).toBeUndefined();
  });

  it("orphanedMessage names the objects, the target and the problem", () => {
    expect(orphanedMessage([cm("a"), cm("b")], target, "remote unreachable: reset")).toBe(
      "could not delete ConfigMap default/a, ConfigMap default/b from service foo (token of Secret tok) (remote unreachable: reset); they were left in that remote cluster",
    );
  });
});

describe("settledEvent: which watch events need no reconcile", () => {
  const F = "pepr.dev/finalizer";
  const ready = (gen: number, status = "True") => [{ type: "Ready", status, reason: "Applied", message: "", lastTransitionTime: "t", observedGeneration: gen }];
  type Event = Parameters<typeof settledEvent>[0];
  const cr = (over: Record<string, unknown> = {}, status: Record<string, unknown> = {}) =>
    ({
      metadata: { generation: 2, finalizers: [F], ...over },
      status: { observedGeneration: 2, conditions: ready(2), ...status },
    }) as Event;

  it("the echo of our own Ready status for the current generation", () => {
    expect(settledEvent(cr(), F)).toBe(true);
  });

  it("anything else is reconciled: a new generation, not Ready, Ready of an older generation, deletion, no finalizer, no status", () => {
    expect(settledEvent(cr({ generation: 3 }), F)).toBe(false);
    expect(settledEvent(cr({}, { conditions: ready(2, "False") }), F)).toBe(false);
    expect(settledEvent(cr({}, { conditions: ready(1) }), F)).toBe(false);
    expect(settledEvent(cr({}, { observedGeneration: 1 }), F)).toBe(false);
    expect(settledEvent(cr({ deletionTimestamp: "2026-11-26T00:00:00Z" }), F)).toBe(false);
    expect(settledEvent(cr({ finalizers: [] }), F)).toBe(false);
    expect(settledEvent({ metadata: { generation: 2, finalizers: [F] } }, F)).toBe(false);
    expect(settledEvent({}, F)).toBe(false);
  });
});
