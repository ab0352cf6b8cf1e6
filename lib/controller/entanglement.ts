// Entanglement reconcile: render the desired agent Deployment (and Service for inbound),
// server-side apply them, and report in status + Events. Deletion is left to Kubernetes'
// garbage collector through ownerReferences: nothing to do when the module is down, nothing
// left behind.
import { K8s, kind, Log } from "pepr";
import { Entanglement, setCondition, type Condition, type EntanglementStatus } from "../crds/index.ts";
import { ENTANGLEMENT_LABEL, MANAGED_BY, objectName, renderEntanglement, serviceName } from "../render/entanglement.ts";
import { resolveServiceRef, type ServiceRefTarget } from "../render/service-ref.ts";
import { agentFailure, type AgentFailure } from "./agent-failure.ts";
import { notOurs } from "../k8s/ownership.ts";
import { emitEvent } from "../k8s/events.ts";
import { checkTokenSecret } from "../k8s/secrets.ts";
import { moduleConfig, type ModuleConfig } from "../config.ts";
import { serialize } from "./serialize.ts";
import { apiMessage, notFound, sameJson } from "../k8s/api.ts";

type Ready = Omit<Condition, "lastTransitionTime">;

export function reconcileEntanglement(event: Entanglement, cfg: ModuleConfig = moduleConfig()): Promise<void> {
  return serialize(`${event.metadata?.namespace}/${event.metadata?.name}`, () => reconcileNow(event, cfg));
}

async function reconcileNow(event: Entanglement, cfg: ModuleConfig): Promise<void> {
  // Watch events queue up (the CR's own, its Deployment's, its Secret's): work from the
  // current object, not the event's copy, so a stale status is neither rewritten nor re-announced.
  const cr = await latest(event);
  if (!cr || cr.metadata?.deletionTimestamp) return;
  const namespace = cr.metadata!.namespace!;
  const generation = cr.metadata?.generation;
  const rendered = renderEntanglement(cr, cfg, await lookUpServiceRef(cr));
  if (!rendered.ok) {
    // a Service of spec.serviceRef missing or ambiguous: pending, and its watch brings us back
    await writeStatus(
      cr,
      { type: "Ready", status: "False", reason: rendered.reason, message: rendered.message, observedGeneration: generation },
      { lastError: rendered.message, phase: rendered.reason === "InvalidSpec" ? "Invalid" : "Pending" },
    );
    return;
  }

  let ready: Ready;
  let extra: Partial<EntanglementStatus> = { direction: rendered.direction };
  try {
    // never take over (and, through the ownerReference, later delete) an object we did not create
    const conflict =
      notOurs(await current(kind.Deployment, namespace, rendered.deployment.metadata!.name!), cr.metadata?.uid, "Deployment") ??
      (rendered.service ? notOurs(await current(kind.Service, namespace, rendered.service.metadata!.name!), cr.metadata?.uid, "Service") : undefined);
    if (conflict) {
      await writeStatus(
        cr,
        { type: "Ready", status: "False", reason: "NameConflict", message: conflict, observedGeneration: generation },
        {
          ...extra,
          phase: "Error",
          lastError: conflict,
        },
      );
      // nothing watches the other object: look again later (it may be renamed or deleted)
      recheckLater(cr);
      return;
    }
    // the apply answers with the whole object, status included: no second read
    const deployment = await K8s(kind.Deployment).Apply(rendered.deployment as kind.Deployment, { force: true });
    if (rendered.service) await K8s(kind.Service).Apply(rendered.service as kind.Service, { force: true });
    else await deleteStaleService(cr, serviceName(cr.metadata!.name!));

    const secret = await checkTokenSecret(namespace, cr.spec!.secretRef);
    const readyReplicas = deployment.status?.readyReplicas ?? 0;
    const available = deployment.status?.conditions?.find((c) => c.type === "Available")?.status === "True";
    const failure = await failedAgent(cr);
    extra = { ...extra, readyReplicas };
    if (!secret.ok) {
      ready = { type: "Ready", status: "False", reason: secret.reason, message: `${secret.message}: the agent cannot start until it exists` };
      extra = { ...extra, phase: "Pending", lastError: secret.message };
    } else if (available && readyReplicas > 0) {
      // an older pod still serves while a newer one (a changed spec) fails: ready, but say so
      const newer = failure ? `; a newer agent pod fails: ${failure.message}` : "";
      ready = {
        type: "Ready",
        status: "True",
        reason: "AgentAvailable",
        message: `agent ${rendered.direction === "inbound" ? "connects" : "exposes"} service ${cr.spec!.serviceUUID}${newer}`,
      };
      extra = { ...extra, phase: "Ready", lastError: undefined };
    } else if (failure) {
      ready = { type: "Ready", status: "False", reason: failure.reason, message: `${failure.message} (pod ${failure.pod})` };
      extra = { ...extra, phase: "Error", lastError: failure.message };
    } else {
      ready = { type: "Ready", status: "False", reason: "AgentNotReady", message: `waiting for the agent Deployment (${readyReplicas}/1 ready)` };
      extra = { ...extra, phase: "Pending", lastError: undefined };
    }
  } catch (err) {
    const message = apiMessage(err);
    Log.error({ err: message, name: cr.metadata?.name, namespace }, "entanglement reconcile failed");
    ready = { type: "Ready", status: "False", reason: "ApplyFailed", message };
    extra = { ...extra, phase: "Error", lastError: message };
  }
  await writeStatus(cr, { ...ready, observedGeneration: generation }, extra);
}

/** What spec.serviceRef points at (outbound only; the renderer refuses it on inbound). */
async function lookUpServiceRef(cr: Entanglement): Promise<ServiceRefTarget | undefined> {
  const spec = cr.spec;
  if (spec?.serviceRef === undefined || spec.inbound === true) return undefined;
  const namespace = cr.metadata!.namespace!;
  const service = await current(kind.Service, namespace, spec.serviceRef);
  return resolveServiceRef({ name: spec.serviceRef, namespace, port: spec.port }, service);
}

/**
 * inbound -> outbound: the Service we made earlier must go; only ours (our ownerReference: a
 * managed-by label alone is something anyone can set).
 */
async function deleteStaleService(cr: Entanglement, name: string): Promise<void> {
  const namespace = cr.metadata!.namespace!;
  const svc = await current(kind.Service, namespace, name);
  if (svc && !notOurs(svc, cr.metadata?.uid, "Service")) {
    try {
      await K8s(kind.Service).InNamespace(namespace).Delete(name);
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
}

/**
 * Why the agent's pods exit, from their container statuses (the agent's termination message).
 * Best effort: a module installed without pods list/watch still reconciles, only less precisely.
 */
async function failedAgent(cr: Entanglement): Promise<AgentFailure | undefined> {
  try {
    const pods = await K8s(kind.Pod)
      .InNamespace(cr.metadata!.namespace!)
      .WithLabel(ENTANGLEMENT_LABEL, objectName("", cr.metadata!.name!))
      .WithLabel(Object.keys(MANAGED_BY)[0], Object.values(MANAGED_BY)[0])
      .Get();
    return agentFailure(pods.items);
  } catch (err) {
    Log.warn({ err: apiMessage(err), name: cr.metadata?.name }, "cannot list the agent's pods");
    return undefined;
  }
}

async function current<T extends kind.Deployment | kind.Service>(model: new () => T, namespace: string, name: string): Promise<T | undefined> {
  try {
    return await K8s(model).InNamespace(namespace).Get(name);
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

const rechecks = new Map<string, NodeJS.Timeout>();
const RECHECK_MS = 30_000;

function recheckLater(cr: Entanglement): void {
  const key = `${cr.metadata!.namespace}/${cr.metadata!.name}`;
  if (rechecks.has(key)) return;
  const timer = setTimeout(() => {
    rechecks.delete(key);
    reconcileByName(cr.metadata!.namespace!, cr.metadata!.name!).catch((err) => Log.warn({ key, err: apiMessage(err) }, "entanglement recheck failed"));
  }, RECHECK_MS);
  timer.unref();
  rechecks.set(key, timer);
}

async function writeStatus(cr: Entanglement, ready: Condition, extra: Partial<EntanglementStatus>): Promise<void> {
  const old = cr.status ?? {};
  const status: EntanglementStatus = {
    ...old,
    ...extra,
    observedGeneration: cr.metadata?.generation,
    conditions: setCondition(old.conditions, ready),
  };
  if (extra.lastError === undefined) delete status.lastError;
  const prev = old.conditions?.find((c) => c.type === "Ready");
  if (sameJson(old, status)) return; // nothing new: no write, no event loop
  await K8s(Entanglement).PatchStatus({
    metadata: { name: cr.metadata!.name, namespace: cr.metadata!.namespace },
    status: { ...status, lastError: status.lastError ?? null } as unknown as EntanglementStatus,
  });
  if (prev?.status !== ready.status || prev?.reason !== ready.reason) {
    const warning = ready.status !== "True" && ready.reason !== "AgentNotReady";
    await emitEvent(cr, warning ? "Warning" : "Normal", ready.reason, ready.message);
  }
}

/** Re-reconciles the Entanglement owning a Deployment we manage (its availability changed). */
export async function reconcileOwnerOf(obj: kind.Deployment): Promise<void> {
  const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === "Entanglement");
  if (!owner || !obj.metadata?.namespace) return;
  await reconcileByName(obj.metadata.namespace, owner.name);
}

/** Re-reconciles the Entanglement whose agent runs in this pod (its container status changed). */
export async function reconcileOwnerOfPod(pod: kind.Pod): Promise<void> {
  const namespace = pod.metadata?.namespace;
  const instance = pod.metadata?.labels?.[ENTANGLEMENT_LABEL];
  if (!namespace || !instance) return;
  // the label is the CR name, shortened with a hash when long: match it rather than invert it
  const list = await K8s(Entanglement).InNamespace(namespace).Get();
  for (const cr of list.items) if (objectName("", cr.metadata?.name ?? "") === instance) await reconcileEntanglement(cr);
}

/** Re-reconciles every Entanglement in the namespace that uses this Secret. */
export async function reconcileUsersOfSecret(secret: kind.Secret): Promise<void> {
  await reconcileWhere(secret.metadata?.namespace, (cr) => cr.spec?.secretRef === secret.metadata?.name);
}

/** Re-reconciles every Entanglement in the namespace whose spec.serviceRef names this Service (created, changed, deleted). */
export async function reconcileUsersOfService(service: kind.Service): Promise<void> {
  await reconcileWhere(service.metadata?.namespace, (cr) => cr.spec?.serviceRef === service.metadata?.name);
}

async function reconcileWhere(namespace: string | undefined, uses: (cr: Entanglement) => boolean): Promise<void> {
  if (!namespace) return;
  const list = await K8s(Entanglement).InNamespace(namespace).Get();
  for (const cr of list.items) if (uses(cr)) await reconcileEntanglement(cr);
}

async function latest(cr: Entanglement): Promise<Entanglement | undefined> {
  try {
    return await K8s(Entanglement).InNamespace(cr.metadata!.namespace!).Get(cr.metadata!.name!);
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

async function reconcileByName(namespace: string, name: string): Promise<void> {
  await reconcileEntanglement({ metadata: { name, namespace } } as Entanglement);
}
