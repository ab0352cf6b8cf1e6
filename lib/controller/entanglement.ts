// Entanglement reconcile: render the desired agent Deployment (and Service for inbound),
// server-side apply them, and report in status + Events. Deletion is left to Kubernetes'
// garbage collector through ownerReferences: nothing to do when the module is down, nothing
// left behind.
import { K8s, kind, Log } from "pepr";
import { Entanglement, type Condition, type EntanglementStatus } from "../crds/index.ts";
import { ENTANGLEMENT_LABEL, MANAGED_BY, objectName, renderEntanglement, serviceName } from "../render/entanglement.ts";
import { resolveServiceRef, type ServiceRefTarget } from "../render/service-ref.ts";
import { agentFailure, type AgentFailure } from "./agent-failure.ts";
import { notOurs } from "../k8s/ownership.ts";
import { emitEvent } from "../k8s/events.ts";
import { checkTokenSecret } from "../k8s/secrets.ts";
import { moduleConfig, type ModuleConfig } from "../config.ts";
import { coalesce } from "./serialize.ts";
import { apiMessage, notFound } from "../k8s/api.ts";
import { agentReady, nextEntanglementStatus, readyEvent, type Ready } from "./entanglement-status.ts";
import { needsApply, withAppliedHash } from "../k8s/unchanged.ts";
import { ControllerMemory, deploymentMatters, deploymentView, isEcho, podMatters, type Links, type Outcome } from "./memory.ts";

/** What the controller saw and did last, per Entanglement (lib/controller/memory.ts). */
const memory = new ControllerMemory();

export function reconcileEntanglement(event: Entanglement, cfg: ModuleConfig = moduleConfig()): Promise<void> {
  const namespace = event.metadata?.namespace ?? "";
  const name = event.metadata?.name ?? "";
  // the echo of our own status write (or the very state the last reconcile read): nothing new
  if (isEcho(memory.outcome(namespace, name), event.metadata?.resourceVersion)) return Promise.resolve();
  return coalesce(ControllerMemory.key(namespace, name), () => reconcileNow(event, cfg));
}

async function reconcileNow(event: Entanglement, cfg: ModuleConfig): Promise<void> {
  // Watch events queue up (the CR's own, its Deployment's, its Secret's): work from the
  // current object, not the event's copy, so a stale status is neither rewritten nor re-announced.
  const cr = await latest(event);
  if (!cr || cr.metadata?.deletionTimestamp) {
    memory.forget(event.metadata!.namespace!, event.metadata!.name!);
    return;
  }
  const namespace = cr.metadata!.namespace!;
  const name = cr.metadata!.name!;
  const generation = cr.metadata?.generation;
  memory.note(namespace, name, { secretRef: cr.spec?.secretRef, serviceRef: cr.spec?.serviceRef, instance: objectName("", name) });
  // until this reconcile has written its status, every related event counts
  memory.unrecord(namespace, name);
  const rendered = renderEntanglement(cr, cfg, await lookUpServiceRef(cr));
  if (!rendered.ok) {
    // a Service of spec.serviceRef missing or ambiguous: pending, and its watch brings us back
    return void (await writeStatus(
      cr,
      { type: "Ready", status: "False", reason: rendered.reason, message: rendered.message, observedGeneration: generation },
      { lastError: rendered.message, phase: rendered.reason === "InvalidSpec" ? "Invalid" : "Pending" },
    ));
  }

  let ready: Ready;
  let extra: Partial<EntanglementStatus> = { direction: rendered.direction };
  let outcome: Omit<Outcome, "resourceVersion"> | undefined;
  try {
    // never take over (and, through the ownerReference, later delete) an object we did not create
    const existing = await current(kind.Deployment, namespace, rendered.deployment.metadata!.name!);
    const existingService = rendered.service ? await current(kind.Service, namespace, rendered.service.metadata!.name!) : undefined;
    const conflict =
      notOurs(existing, cr.metadata?.uid, "Deployment") ?? (rendered.service ? notOurs(existingService, cr.metadata?.uid, "Service") : undefined);
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
    // written only when it differs from what is there (lib/k8s/unchanged.ts); the apply answers
    // with the whole object, status included: no second read
    const desired = withAppliedHash(rendered.deployment);
    const deployment = needsApply(desired, existing) ? await K8s(kind.Deployment).Apply(desired as kind.Deployment, { force: true }) : existing!;
    if (rendered.service) {
      const service = withAppliedHash(rendered.service);
      if (needsApply(service, existingService)) await K8s(kind.Service).Apply(service as kind.Service, { force: true });
    } else await deleteStaleService(cr, serviceName(cr.metadata!.name!));

    const secret = await checkTokenSecret(namespace, cr.spec!.secretRef);
    const readyReplicas = deployment.status?.readyReplicas ?? 0;
    const available = deployment.status?.conditions?.find((c) => c.type === "Available")?.status === "True";
    const failure = await failedAgent(cr);
    outcome = { deploymentGeneration: deployment.metadata?.generation, readyReplicas, available, failed: failure !== undefined };
    ({ ready, extra } = agentReady({ secret, direction: rendered.direction, serviceUUID: cr.spec!.serviceUUID, readyReplicas, available, failure }));
  } catch (err) {
    const message = apiMessage(err);
    Log.error({ err: message, name: cr.metadata?.name, namespace }, "entanglement reconcile failed");
    ready = { type: "Ready", status: "False", reason: "ApplyFailed", message };
    extra = { ...extra, phase: "Error", lastError: message };
  }
  const resourceVersion = await writeStatus(cr, { ...ready, observedGeneration: generation }, extra);
  if (outcome) memory.record(namespace, name, { ...outcome, resourceVersion });
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

/** Writes the status if it changed; returns the Entanglement's resourceVersion after that. */
async function writeStatus(cr: Entanglement, ready: Condition, extra: Partial<EntanglementStatus>): Promise<string | undefined> {
  const status = nextEntanglementStatus(cr.status, ready, extra, cr.metadata?.generation);
  if (!status) return cr.metadata?.resourceVersion; // nothing new: no write, no event loop
  const written = await K8s(Entanglement).PatchStatus({
    metadata: { name: cr.metadata!.name, namespace: cr.metadata!.namespace },
    status: { ...status, lastError: status.lastError ?? null } as unknown as EntanglementStatus,
  });
  const event = readyEvent(cr.status, ready);
  if (event) await emitEvent(cr, event, ready.reason, ready.message);
  return written?.metadata?.resourceVersion;
}

/**
 * Re-reconciles the Entanglement owning a Deployment we manage, when its spec (edited by
 * someone) or its availability changed since the last reconcile.
 */
export async function reconcileOwnerOf(obj: kind.Deployment): Promise<void> {
  const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === "Entanglement");
  const namespace = obj.metadata?.namespace;
  if (!owner || !namespace) return;
  if (!deploymentMatters(memory.outcome(namespace, owner.name), deploymentView(obj))) return;
  await reconcileByName(namespace, owner.name);
}

/** Re-reconciles the Entanglement whose agent runs in this pod, when the pod failed or a failure was reported. */
export async function reconcileOwnerOfPod(pod: kind.Pod): Promise<void> {
  const namespace = pod.metadata?.namespace;
  const instance = pod.metadata?.labels?.[ENTANGLEMENT_LABEL];
  if (!namespace || !instance) return;
  const failed = agentFailure([pod]) !== undefined;
  // the label is the CR name, shortened with a hash when long: matched against the CRs seen (one
  // not seen yet is reconciled, pods included, when its own watch event comes)
  for (const name of memory.owners(namespace, instance)) if (podMatters(memory.outcome(namespace, name), failed)) await reconcileByName(namespace, name);
}

/** Re-reconciles every Entanglement seen in the namespace that uses this Secret. */
export async function reconcileUsersOfSecret(secret: kind.Secret): Promise<void> {
  await reconcileWhere(secret.metadata?.namespace, (links) => links.secretRef === secret.metadata?.name);
}

/** Re-reconciles every Entanglement seen in the namespace whose spec.serviceRef names this Service (created, changed, deleted). */
export async function reconcileUsersOfService(service: kind.Service): Promise<void> {
  await reconcileWhere(service.metadata?.namespace, (links) => links.serviceRef === service.metadata?.name);
}

async function reconcileWhere(namespace: string | undefined, uses: (links: Links) => boolean): Promise<void> {
  if (!namespace) return;
  // a resync: each one runs in turn (the users of one Secret can be a thousand)
  for (const name of memory.users(namespace, uses)) await reconcileByName(namespace, name);
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
