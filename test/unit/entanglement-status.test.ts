// The Entanglement controller's decisions (lib/controller/entanglement-status.ts): Ready and
// phase from the agent's state, the status to write (none when unchanged), the Event on a change.
import { describe, expect, it } from "vitest";
import { agentReady, nextEntanglementStatus, readyEvent, type AgentState, type Ready } from "../../lib/controller/entanglement-status.ts";
import type { EntanglementStatus } from "../../lib/crds/index.ts";

const up: AgentState = { secret: { ok: true }, direction: "outbound", serviceUUID: "web", readyReplicas: 1, available: true };
const failure = { reason: "AgentFailed" as const, message: "--target: must be 1-65535, got 0", pod: "entangle-web-abc" };

describe("agentReady", () => {
  it("available with a ready replica: Ready, naming what the agent does", () => {
    expect(agentReady(up)).toEqual({
      ready: { type: "Ready", status: "True", reason: "AgentAvailable", message: "agent exposes service web" },
      extra: { direction: "outbound", readyReplicas: 1, phase: "Ready", lastError: undefined },
    });
    expect(agentReady({ ...up, direction: "inbound" }).ready.message).toBe("agent connects service web");
  });

  it("an older pod serves while a newer one fails: still Ready, and the message says so", () => {
    expect(agentReady({ ...up, failure }).ready).toEqual({
      type: "Ready",
      status: "True",
      reason: "AgentAvailable",
      message: "agent exposes service web; a newer agent pod fails: --target: must be 1-65535, got 0",
    });
  });

  it("the Secret comes first: Pending with its reason, whatever the Deployment says", () => {
    const secret = { ok: false, reason: "SecretNotFound", message: "Secret default/tok not found" };
    expect(agentReady({ ...up, secret })).toEqual({
      ready: { type: "Ready", status: "False", reason: "SecretNotFound", message: "Secret default/tok not found: the agent cannot start until it exists" },
      extra: { direction: "outbound", readyReplicas: 1, phase: "Pending", lastError: "Secret default/tok not found" },
    });
  });

  it("not available: a failing pod is an Error naming it, else waiting (Pending)", () => {
    expect(agentReady({ ...up, available: false, readyReplicas: 0, failure })).toEqual({
      ready: { type: "Ready", status: "False", reason: "AgentFailed", message: "--target: must be 1-65535, got 0 (pod entangle-web-abc)" },
      extra: { direction: "outbound", readyReplicas: 0, phase: "Error", lastError: "--target: must be 1-65535, got 0" },
    });
    expect(agentReady({ ...up, available: false, readyReplicas: 0 })).toEqual({
      ready: { type: "Ready", status: "False", reason: "AgentNotReady", message: "waiting for the agent Deployment (0/1 ready)" },
      extra: { direction: "outbound", readyReplicas: 0, phase: "Pending", lastError: undefined },
    });
    // available but no ready replica (or the reverse) is not Ready
    expect(agentReady({ ...up, readyReplicas: 0 }).ready.reason).toBe("AgentNotReady");
    expect(agentReady({ ...up, available: false }).ready.message).toBe("waiting for the agent Deployment (1/1 ready)");
  });
});

describe("nextEntanglementStatus and readyEvent", () => {
  const t0 = new Date("2026-11-26T10:00:00Z");
  const ok: Ready = { type: "Ready", status: "True", reason: "AgentAvailable", message: "agent exposes service web", observedGeneration: 2 };

  it("writes the merged status, then nothing while it stays the same", () => {
    const first = nextEntanglementStatus(undefined, ok, { phase: "Ready", readyReplicas: 1, lastError: undefined }, 2, t0)!;
    expect(first).toEqual({ phase: "Ready", readyReplicas: 1, observedGeneration: 2, conditions: [{ ...ok, lastTransitionTime: "2026-11-26T10:00:00Z" }] });
    expect("lastError" in first).toBe(false);
    expect(nextEntanglementStatus(first, ok, { phase: "Ready", readyReplicas: 1, lastError: undefined }, 2, new Date())).toBeUndefined();
    expect(nextEntanglementStatus(first, ok, { phase: "Ready", readyReplicas: 1 }, 3, t0)!.observedGeneration).toBe(3);
  });

  it("keeps old fields extra does not name; a lastError is kept when set and removed when left undefined", () => {
    const old: EntanglementStatus = { direction: "outbound", phase: "Error", lastError: "boom", readyReplicas: 0 };
    const failed = nextEntanglementStatus(old, { ...ok, status: "False", reason: "AgentFailed" }, { phase: "Error", lastError: "bang" }, 1, t0)!;
    expect([failed.direction, failed.lastError]).toEqual(["outbound", "bang"]);
    const fixed = nextEntanglementStatus(old, ok, { phase: "Ready", readyReplicas: 1, lastError: undefined }, 1, t0)!;
    expect([fixed.direction, fixed.phase, "lastError" in fixed]).toEqual(["outbound", "Ready", false]);
  });

  it("an Event when Ready's status or reason changes: Warning unless Ready or waiting for the agent", () => {
    const was = (status: "True" | "False", reason: string): EntanglementStatus => ({ conditions: [{ type: "Ready", status, reason, message: "m" }] });
    expect(readyEvent(undefined, ok)).toBe("Normal");
    expect(readyEvent({}, ok)).toBe("Normal");
    // the Ready condition, not the first one
    const other = { type: "Other", status: "False" as const, reason: "X", message: "m" };
    expect(readyEvent({ conditions: [other, { ...other, type: "Ready", status: "True", reason: "AgentAvailable" }] }, ok)).toBeUndefined();
    expect(readyEvent(was("True", "AgentAvailable"), { ...ok, message: "other" })).toBeUndefined();
    expect(readyEvent(was("False", "AgentAvailable"), ok)).toBe("Normal");
    expect(readyEvent(was("True", "Other"), ok)).toBe("Normal");
    expect(readyEvent(undefined, { ...ok, status: "False", reason: "AgentNotReady" })).toBe("Normal");
    expect(readyEvent(undefined, { ...ok, status: "False", reason: "AgentFailed" })).toBe("Warning");
    expect(readyEvent(undefined, { ...ok, status: "Unknown", reason: "AgentAvailable" })).toBe("Warning");
  });
});
