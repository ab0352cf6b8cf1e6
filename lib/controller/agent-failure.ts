// Why an Entanglement's agent is not running, from its pods' container statuses: the agent
// writes its one-line exit reason to /dev/termination-log (Kubernetes falls back to the log's
// tail), which lands in state.terminated.message, or, while it waits to be restarted
// (CrashLoopBackOff), in lastState.terminated. Pure: the controller lists the pods.
import { AGENT_CONTAINER } from "../render/agent.ts";

interface Terminated {
  exitCode?: number;
  reason?: string;
  message?: string;
}

/** The parts of a core/v1 ContainerStatus read here. */
export interface ContainerStatusLike {
  name: string;
  state?: { terminated?: Terminated; waiting?: { reason?: string; message?: string }; running?: unknown };
  lastState?: { terminated?: Terminated };
  restartCount?: number;
}

export interface PodLike {
  metadata?: { name?: string; creationTimestamp?: string | Date; deletionTimestamp?: string | Date };
  status?: { containerStatuses?: ContainerStatusLike[] };
}

export interface AgentFailure {
  reason: "AgentFailed";
  message: string;
  pod: string;
}

/** Waiting reasons that mean the container cannot start without a change (no crash involved). */
const STUCK = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"];
const MESSAGE_MAX = 512;

/**
 * The reason in a termination message: the agent's own line, or the last line of the log tail
 * Kubernetes took instead (a JSON log line: its msg and err).
 */
export function terminationReason(message: string | undefined): string | undefined {
  const last = (message ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .at(-1);
  if (last === undefined) return undefined;
  let text = last;
  try {
    const json = JSON.parse(last) as { msg?: unknown; err?: unknown };
    if (typeof json.msg === "string") {
      const err = typeof json.err === "string" ? json.err : (json.err as { message?: unknown } | undefined)?.message;
      text = typeof err === "string" ? `${json.msg}: ${err}` : json.msg;
    }
  } catch {
    // a plain line: the agent's own
  }
  return text.length > MESSAGE_MAX ? `${text.slice(0, MESSAGE_MAX - 3)}...` : text;
}

/** The same words whether the container is down or waiting to restart: no status churn. */
function describeExit(t: Terminated): string {
  const why = terminationReason(t.message) ?? (t.reason && t.reason !== "Error" ? t.reason : "no reason given");
  return `agent exited with code ${t.exitCode ?? "?"}: ${why}`;
}

function failureOf(status: ContainerStatusLike): string | undefined {
  const { state, lastState } = status;
  const failed = (t: Terminated | undefined) => t !== undefined && (t.exitCode !== 0 || terminationReason(t.message) !== undefined);
  if (failed(state?.terminated)) return describeExit(state!.terminated!);
  const waiting = state?.waiting;
  if (waiting !== undefined) {
    if (STUCK.includes(waiting.reason ?? "")) return `agent cannot start: ${waiting.reason}${waiting.message ? `: ${terminationReason(waiting.message)}` : ""}`;
    // CrashLoopBackOff (or ContainerCreating again): why the last run ended
    if (failed(lastState?.terminated)) return describeExit(lastState!.terminated!);
  }
  return undefined;
}

const time = (t: string | Date | undefined) => (t === undefined ? 0 : new Date(t).getTime());

/** The newest live pod whose agent container failed, and why; undefined when none did. */
export function agentFailure(pods: PodLike[]): AgentFailure | undefined {
  const live = pods.filter((p) => p.metadata?.deletionTimestamp === undefined);
  live.sort((a, b) => time(b.metadata?.creationTimestamp) - time(a.metadata?.creationTimestamp));
  for (const pod of live) {
    const status = pod.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER);
    const message = status !== undefined ? failureOf(status) : undefined;
    if (message !== undefined) return { reason: "AgentFailed", message, pod: pod.metadata?.name ?? "" };
  }
  return undefined;
}
