// Kubernetes Events on our objects, so `kubectl describe` tells users what happened.
import { hostname } from "node:os";
import { K8s, kind, Log } from "pepr";

interface ObjectRef {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string };
}

export async function emitEvent(obj: ObjectRef, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
  const now = new Date().toISOString();
  const meta = obj.metadata ?? {};
  try {
    await K8s(kind.CoreEvent).Create({
      metadata: { generateName: `${meta.name ?? "entangle"}.`, namespace: meta.namespace ?? "default" },
      involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: meta.name, namespace: meta.namespace, uid: meta.uid },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: "entangle" },
      reportingComponent: "entangle",
      reportingInstance: hostname(),
      firstTimestamp: now as unknown as Date,
      lastTimestamp: now as unknown as Date,
      count: 1,
    });
  } catch (err) {
    // an Event is best effort: never fail a reconcile because of it
    Log.warn({ err: (err as Error).message, reason }, "could not record event");
  }
}
