// metav1.Condition handling shared by both controllers.
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

/**
 * Returns `conditions` with `next` set. lastTransitionTime changes only when the status does,
 * so writing the same condition twice is a no-op (no status churn, no watch-event loop).
 */
export function setCondition(conditions: Condition[] | undefined, next: Condition, now = new Date()): Condition[] {
  const list = conditions ?? [];
  const prev = list.find((c) => c.type === next.type);
  const merged: Condition = {
    ...next,
    lastTransitionTime: prev && prev.status === next.status && prev.lastTransitionTime ? prev.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, "Z"),
  };
  // in place: the list keeps its order, so an unchanged status reads back the same
  return prev ? list.map((c) => (c === prev ? merged : c)) : [...list, merged];
}
