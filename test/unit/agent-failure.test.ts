import { describe, expect, it } from "vitest";
import { agentFailure, terminationReason, type ContainerStatusLike, type PodLike } from "../../lib/controller/agent-failure.ts";

const LINE = 'entangle: --service: must be at most 253 characters, got "aaaa…"';

function pod(
  name: string,
  agent: Omit<ContainerStatusLike, "name">,
  extra: { created?: string; deleting?: boolean; other?: ContainerStatusLike[] } = {},
): PodLike {
  return {
    metadata: { name, creationTimestamp: extra.created ?? "2026-01-01T00:00:00Z", ...(extra.deleting ? { deletionTimestamp: "2026-01-01T00:01:00Z" } : {}) },
    status: { containerStatuses: [...(extra.other ?? []), { name: "entangle-agent", ...agent }] },
  };
}

describe("agentFailure: why the agent is not running, from its pods", () => {
  it("terminated: the agent's own line from the termination log", () => {
    expect(agentFailure([pod("p", { state: { terminated: { exitCode: 2, reason: "Error", message: `${LINE}\n` } } })])).toEqual({
      reason: "AgentFailed",
      pod: "p",
      message: `agent exited with code 2: ${LINE}`,
    });
  });

  it("CrashLoopBackOff: the last termination, in the same words (no status churn)", () => {
    const p = pod("p", {
      state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container" } },
      lastState: { terminated: { exitCode: 2, message: LINE } },
      restartCount: 3,
    });
    expect(agentFailure([p])?.message).toBe(`agent exited with code 2: ${LINE}`);
  });

  it("running again after a crash, or never failed: no failure", () => {
    expect(agentFailure([pod("p", { state: { running: {} }, lastState: { terminated: { exitCode: 2, message: LINE } } })])).toBeUndefined();
    expect(agentFailure([pod("p", { state: { waiting: { reason: "ContainerCreating" } } })])).toBeUndefined();
    expect(agentFailure([pod("p", { state: { terminated: { exitCode: 0, reason: "Completed" } } })])).toBeUndefined();
    expect(agentFailure([])).toBeUndefined();
    expect(agentFailure([{ metadata: { name: "pending" } }])).toBeUndefined();
  });

  it("a pod that cannot start (image pull, config) says so", () => {
    const p = pod("p", { state: { waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "example.test/entangle:ci"' } } });
    expect(agentFailure([p])?.message).toBe('agent cannot start: ImagePullBackOff: Back-off pulling image "example.test/entangle:ci"');
  });

  it("only the entangle-agent container counts; the newest live pod wins", () => {
    const other = { name: "app", state: { terminated: { exitCode: 1, message: "app failed" } } };
    expect(agentFailure([pod("p", { state: { running: {} } }, { other: [other] })])).toBeUndefined();
    const old = pod("old", { state: { terminated: { exitCode: 2, message: "old reason" } } }, { created: "2026-01-01T00:00:00Z" });
    const young = pod("new", { state: { terminated: { exitCode: 2, message: "new reason" } } }, { created: "2026-01-02T00:00:00Z" });
    const gone = pod("gone", { state: { terminated: { exitCode: 2, message: "gone" } } }, { created: "2026-01-03T00:00:00Z", deleting: true });
    expect(agentFailure([old, young, gone])).toMatchObject({ pod: "new", message: "agent exited with code 2: new reason" });
  });

  it("no termination message: the exit code and Kubernetes' reason", () => {
    expect(agentFailure([pod("p", { state: { terminated: { exitCode: 137, reason: "OOMKilled" } } })])?.message).toBe("agent exited with code 137: OOMKilled");
    expect(agentFailure([pod("p", { state: { terminated: { exitCode: 1, reason: "Error" } } })])?.message).toBe("agent exited with code 1: no reason given");
  });
});

describe("terminationReason", () => {
  it("takes the last line of a log tail, the msg (and err) of a JSON log line, bounded", () => {
    expect(terminationReason("starting\nfirst\n  last line  \n\n")).toBe("last line");
    expect(terminationReason('{"level":60,"msg":"agent crashed","err":{"message":"boom"}}')).toBe("agent crashed: boom");
    expect(terminationReason('{"level":50,"msg":"failed"}')).toBe("failed");
    expect(terminationReason("x".repeat(2048))).toHaveLength(512);
    expect(terminationReason("")).toBeUndefined();
    expect(terminationReason(undefined)).toBeUndefined();
  });
});
