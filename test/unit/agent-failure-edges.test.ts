// lib/controller/agent-failure.ts edges the mutation run found untested: every stuck waiting
// reason, JSON log lines without msg or with a string err, the length bound at its edge, exit
// code 0, missing fields of pods the API server may hand over half-filled.
import { describe, expect, it } from "vitest";
import { agentFailure, terminationReason, type ContainerStatusLike, type PodLike } from "../../lib/controller/agent-failure.ts";

const agent = (s: Omit<ContainerStatusLike, "name">): ContainerStatusLike => ({ name: "entangle-agent", ...s });
const pod = (name: string | undefined, status: ContainerStatusLike, created?: string): PodLike => ({
  metadata: { ...(name ? { name } : {}), ...(created ? { creationTimestamp: created } : {}) },
  status: { containerStatuses: [status] },
});

describe("agentFailure edges", () => {
  it("a container status without a state yet, and a failed pod without metadata, are read without throwing", () => {
    expect(agentFailure([{ metadata: {}, status: { containerStatuses: [agent({})] } }])).toBeUndefined();
    const failed = agent({ state: { terminated: { exitCode: 1, reason: "Error" } } });
    expect(agentFailure([{ status: { containerStatuses: [failed] } } as PodLike])).toMatchObject({ reason: "AgentFailed", pod: "" });
  });

  it.each(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"])(
    "waiting in %s: cannot start",
    (reason) => {
      expect(agentFailure([pod("p", agent({ state: { waiting: { reason } } }))])).toEqual({
        reason: "AgentFailed",
        message: `agent cannot start: ${reason}`,
        pod: "p",
      });
    },
  );

  it("waiting for another reason, or none, after no crash: no failure", () => {
    expect(agentFailure([pod("p", agent({ state: { waiting: { reason: "ContainerCreating" } } }))])).toBeUndefined();
    expect(agentFailure([pod("p", agent({ state: { waiting: {} } }))])).toBeUndefined();
  });

  it("exit code 0: a failure only with a reason in its message; an unknown code is ?", () => {
    expect(agentFailure([pod("p", agent({ state: { terminated: { exitCode: 0 } } }))])).toBeUndefined();
    expect(agentFailure([pod("p", agent({ state: { terminated: { exitCode: 0, message: "bye" } } }))])?.message).toBe("agent exited with code 0: bye");
    expect(agentFailure([pod("p", agent({ state: { terminated: { message: "gone" } } }))])?.message).toBe("agent exited with code ?: gone");
    expect(agentFailure([pod("p", agent({ state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated: { exitCode: 0 } } }))])).toBeUndefined();
  });

  it("pods half-filled: no metadata, no status, no name, no creation time", () => {
    expect(agentFailure([{}, { status: {} }, { metadata: {} }])).toBeUndefined();
    expect(agentFailure([pod(undefined, agent({ state: { terminated: { exitCode: 2, message: "x" } } }))])).toEqual({
      reason: "AgentFailed",
      message: "agent exited with code 2: x",
      pod: "",
    });
    // a pod without a creation time counts as the oldest
    const failing = (name: string, created?: string) => pod(name, agent({ state: { terminated: { exitCode: 1, message: name } } }), created);
    expect(agentFailure([failing("undated"), failing("dated", "2026-01-01T00:00:00Z")])?.pod).toBe("dated");
    expect(agentFailure([failing("dated", "2026-01-01T00:00:00Z"), failing("undated")])?.pod).toBe("dated");
  });
});

describe("terminationReason edges", () => {
  it("JSON without a string msg is a plain line; a string err is appended", () => {
    expect(terminationReason('{"level":50,"err":"x"}')).toBe('{"level":50,"err":"x"}');
    expect(terminationReason('{"msg":5}')).toBe('{"msg":5}');
    expect(terminationReason('{"msg":"failed","err":"boom"}')).toBe("failed: boom");
    expect(terminationReason('{"msg":"failed","err":{"message":7}}')).toBe("failed");
  });
  it("512 characters are kept whole, 513 are cut to 509 and an ellipsis", () => {
    expect(terminationReason("x".repeat(512))).toBe("x".repeat(512));
    expect(terminationReason("x".repeat(513))).toBe("x".repeat(509) + "...");
  });
});
