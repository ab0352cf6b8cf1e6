// The Entanglement controller's decisions, as pure functions: which Ready condition and phase
// the agent's state gives, the status to write (none when nothing changed) and the Event that
// announces a change of Ready. lib/controller/entanglement.ts keeps the I/O.
import { setCondition, type Condition, type EntanglementStatus } from "../crds/index.ts";
import { sameJson } from "../k8s/api.ts";
import type { SecretCheck } from "../k8s/secrets.ts";
import type { AgentFailure } from "./agent-failure.ts";

export type Ready = Omit<Condition, "lastTransitionTime">;

/** What a reconcile read about the agent. */
export interface AgentState {
  secret: Pick<SecretCheck, "ok"> & { reason?: string; message?: string };
  direction: "inbound" | "outbound";
  serviceUUID: string;
  readyReplicas: number;
  /** the Deployment's Available condition is True */
  available: boolean;
  /** why one of the agent's pods exits, if one does */
  failure?: AgentFailure;
}

/**
 * Ready and phase: the Secret first (the agent cannot start without it), then an available
 * agent (Ready even while a newer pod fails: an older one still serves, and the message says
 * so), then a failing pod, else waiting.
 */
export function agentReady(s: AgentState): { ready: Ready; extra: Partial<EntanglementStatus> } {
  const base = { direction: s.direction, readyReplicas: s.readyReplicas };
  if (!s.secret.ok)
    return {
      ready: { type: "Ready", status: "False", reason: s.secret.reason!, message: `${s.secret.message}: the agent cannot start until it exists` },
      extra: { ...base, phase: "Pending", lastError: s.secret.message },
    };
  if (s.available && s.readyReplicas > 0) {
    const newer = s.failure ? `; a newer agent pod fails: ${s.failure.message}` : "";
    const verb = s.direction === "inbound" ? "connects" : "exposes";
    return {
      ready: { type: "Ready", status: "True", reason: "AgentAvailable", message: `agent ${verb} service ${s.serviceUUID}${newer}` },
      extra: { ...base, phase: "Ready", lastError: undefined },
    };
  }
  if (s.failure)
    return {
      ready: { type: "Ready", status: "False", reason: s.failure.reason, message: `${s.failure.message} (pod ${s.failure.pod})` },
      extra: { ...base, phase: "Error", lastError: s.failure.message },
    };
  return {
    ready: { type: "Ready", status: "False", reason: "AgentNotReady", message: `waiting for the agent Deployment (${s.readyReplicas}/1 ready)` },
    extra: { ...base, phase: "Pending", lastError: undefined },
  };
}

/**
 * The status after a reconcile, or undefined when it is what is there: no write, no watch
 * event. `extra` fields replace the old ones; a lastError left undefined is removed.
 */
export function nextEntanglementStatus(
  old: EntanglementStatus | undefined,
  ready: Condition,
  extra: Partial<EntanglementStatus>,
  generation: number | undefined,
  now = new Date(),
): EntanglementStatus | undefined {
  const prev = old ?? {};
  const status: EntanglementStatus = { ...prev, ...extra, observedGeneration: generation, conditions: setCondition(prev.conditions, ready, now) };
  if (extra.lastError === undefined) delete status.lastError;
  return sameJson(prev, status) ? undefined : status;
}

/** The Event that says Ready changed (status or reason), or undefined: a Warning unless Ready or merely waiting for the agent. */
export function readyEvent(old: EntanglementStatus | undefined, ready: Ready): "Normal" | "Warning" | undefined {
  const prev = old?.conditions?.find((c) => c.type === "Ready");
  if (prev?.status === ready.status && prev?.reason === ready.reason) return undefined;
  return ready.status !== "True" && ready.reason !== "AgentNotReady" ? "Warning" : "Normal";
}
