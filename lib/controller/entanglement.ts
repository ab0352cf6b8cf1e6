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
import { checkTokenSecret, outcomeOf, secretNotFound, tokenFromSecret, type SecretOutcome } from "../k8s/secrets.ts";
import { moduleConfig, type ModuleConfig } from "../config.ts";
import { burstGate, coalesce, limiter, type Gate } from "./serialize.ts";
import { apiMessage, DELETED, notFound } from "../k8s/api.ts";
import { agentReady, nextEntanglementStatus, readyEvent, type Ready } from "./entanglement-status.ts";
import { needsApply, withAppliedHash } from "../k8s/unchanged.ts";
import { ControllerMemory, deploymentMatters, deploymentView, isEcho, newSpec, podMatters, type Links, type Outcome } from "./memory.ts";
import { AgentPods, InFlight, ListedNamespaces, ObjectCache } from "./caches.ts";

/** What the controller saw and did last, per Entanglement (lib/controller/memory.ts). */
const memory = new ControllerMemory();

// What the watches delivered (lib/controller/caches.ts), by "namespace/name": a reconcile reads
// the API only for what they have never seen (issue 11).
/** the last Entanglement its watch (or our status write) delivered */
const crs = new ObjectCache<Entanglement>();
/** our agent Deployments (the managed Deployment watch, our applies); a user's is never kept */
const deployments = new ObjectCache<kind.Deployment>();
/** Services: ours, and every name a reconcile asked about (null: absent); the Service watch sees all */
const services = new ObjectCache<kind.Service>();
/** namespaces whose Services are all in `services` (listed once; the Service watch keeps them) */
const serviceNamespaces = new ListedNamespaces();
/** the token Secrets' check outcomes (never their data); the Secret watch sees all */
const secrets = new Map<string, SecretOutcome>();
/** the agents' pods, for their failures (the managed Pod watch) */
const pods = new AgentPods();
const reads = new InFlight();

const MANAGED_BY_KEY = Object.keys(MANAGED_BY)[0];
const MANAGED_BY_VALUE = Object.values(MANAGED_BY)[0];
const managed = (obj: { metadata?: { labels?: Record<string, string> } }) => obj.metadata?.labels?.[MANAGED_BY_KEY] === MANAGED_BY_VALUE;
const keyOf = (obj: { metadata?: { namespace?: string; name?: string } }) => ControllerMemory.key(obj.metadata?.namespace ?? "", obj.metadata?.name ?? "");

/**
 * Reconciles at a time, across Entanglements (one at a time per CR; a CR's later events join
 * the one waiting): a bounded pool, as the Manifests' (each reconcile mostly waits on requests).
 */
const MAX_CONCURRENT_RECONCILES = 16;
const slot = limiter(MAX_CONCURRENT_RECONCILES);
/**
 * A burst of new Entanglements or specs (10 within a second, as a bulk apply makes) holds
 * reconciles until none came for a second, for at most 30 s. Started at once, a `kubectl apply` of
 * 1,000 Entanglements started 1,000 reconciles, and their requests and the Deployments,
 * ReplicaSets and Pods those make took the API server's CPU from the apply itself (3.4x its time
 * without the module on 2 cores, issue 11); held, the apply is served first and they follow it.
 * A pause of the apply shorter than the quiet second does not end the burst: released early, the
 * reconciles would slow the apply, and its events would come further apart still.
 */
const burst = burstGate({ count: 10, windowMs: 1000, quietMs: 1000 }, 30_000);
const gate: Gate = (run) => burst.gate(() => slot(run));

/** The module's settings, parsed once (they come from its environment): ~1 ms per reconcile otherwise. */
let settings: ModuleConfig | undefined;

export function reconcileEntanglement(event: Entanglement, cfg: ModuleConfig = (settings ??= moduleConfig())): Promise<void> {
  const namespace = event.metadata?.namespace ?? "";
  const name = event.metadata?.name ?? "";
  const key = ControllerMemory.key(namespace, name);
  const generationBefore = crs.get(key)?.metadata?.generation;
  // a watch event's object is the current one when its reconcile starts (reconcileByName's has no version)
  // (a watch's initial list serves its items without apiVersion and kind: our Events name them)
  if (event.metadata?.resourceVersion !== undefined) crs.observe(key, { apiVersion: "entangle.kairos.io/v1alpha1", kind: "Entanglement", ...event });
  // the echo of our own status write (or the very state the last reconcile read): nothing new
  if (isEcho(memory.outcome(namespace, name), event.metadata?.resourceVersion)) return Promise.resolve();
  if (newSpec(event, generationBefore)) burst.arrived();
  return coalesce(key, () => reconcileNow(namespace, name, cfg), gate);
}

/** The Entanglement was deleted: nothing of it is kept. */
export function forgetEntanglement(event: Entanglement): void {
  crs.forget(keyOf(event));
  memory.forget(event.metadata?.namespace ?? "", event.metadata?.name ?? "");
}

async function reconcileNow(namespace: string, name: string, cfg: ModuleConfig): Promise<void> {
  // Watch events queue up (the CR's own, its Deployment's, its Secret's): work from the last
  // object the CR's watch delivered when this run starts (coalesce joins the later ones to it),
  // so a stale status is neither rewritten nor re-announced; read it only when none came.
  const cr = await latest(namespace, name);
  if (!cr || cr.metadata?.deletionTimestamp) {
    crs.forget(ControllerMemory.key(namespace, name));
    memory.forget(namespace, name);
    return;
  }
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
    // (read together, and applied together below: one round trip each, not two)
    const [existing, existingService] = await Promise.all([
      currentDeployment(namespace, rendered.deployment.metadata!.name!),
      rendered.service ? currentService(namespace, rendered.service.metadata!.name!, true) : undefined,
    ]);
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
    const applyDeployment = async (): Promise<kind.Deployment> => {
      const desired = withAppliedHash(rendered.deployment);
      if (!needsApply(desired, existing)) return existing!;
      const applied = await K8s(kind.Deployment).Apply(desired as kind.Deployment, { force: true });
      deployments.observe(keyOf(applied), applied);
      return applied;
    };
    const applyService = async (): Promise<void> => {
      if (!rendered.service) return deleteStaleService(cr, serviceName(cr.metadata!.name!));
      const service = withAppliedHash(rendered.service);
      if (!needsApply(service, existingService)) return;
      const applied = await K8s(kind.Service).Apply(service as kind.Service, { force: true });
      services.observe(keyOf(applied), applied);
    };
    const [deployment] = await Promise.all([applyDeployment(), applyService()]);

    const secret = await tokenSecret(namespace, cr.spec!.secretRef);
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
  const service = await currentService(namespace, spec.serviceRef);
  return resolveServiceRef({ name: spec.serviceRef, namespace, port: spec.port }, service);
}

/**
 * inbound -> outbound: the Service we made earlier must go; only ours (our ownerReference: a
 * managed-by label alone is something anyone can set).
 */
async function deleteStaleService(cr: Entanglement, name: string): Promise<void> {
  const namespace = cr.metadata!.namespace!;
  const svc = await currentService(namespace, name);
  if (svc && !notOurs(svc, cr.metadata?.uid, "Service")) {
    try {
      await K8s(kind.Service).InNamespace(namespace).Delete(name);
    } catch (err) {
      if (!notFound(err)) throw err;
    }
    services.absent(ControllerMemory.key(namespace, name));
  }
}

/**
 * Why the agent's pods exit, from their container statuses (the agent's termination message).
 * Best effort: a module installed without pods list/watch still reconciles, only less precisely.
 */
async function failedAgent(cr: Entanglement): Promise<AgentFailure | undefined> {
  const namespace = cr.metadata!.namespace!;
  // from the managed Pod watch; the namespace's managed pods listed once first, as after a
  // module restart that watch may not have delivered them yet
  if (!pods.complete(namespace)) {
    try {
      await reads.run(`pods/${namespace}`, async () => {
        const list = await K8s(kind.Pod).InNamespace(namespace).WithLabel(MANAGED_BY_KEY, MANAGED_BY_VALUE).Get();
        pods.listed(
          namespace,
          list.items.flatMap((pod) => {
            const instance = pod.metadata?.labels?.[ENTANGLEMENT_LABEL];
            return instance ? [{ instance, pod: pod as Parameters<AgentPods["observe"]>[2] }] : [];
          }),
        );
      });
    } catch (err) {
      Log.warn({ err: apiMessage(err), name: cr.metadata?.name }, "cannot list the agent's pods");
      return undefined;
    }
  }
  return agentFailure(pods.of(namespace, objectName("", cr.metadata!.name!)));
}

/** namespaces whose managed Deployments were listed once (a restart: one list, not a read each) */
const deploymentNamespaces = new Set<string>();

/**
 * Our Deployment of that name from the watch, or from one list of the namespace's managed
 * Deployments (after a restart the watch may not have delivered them yet); else read: it may be
 * a user's (never kept), or absent.
 */
async function currentDeployment(namespace: string, name: string): Promise<kind.Deployment | undefined> {
  const key = ControllerMemory.key(namespace, name);
  if (deployments.known(key)) return deployments.get(key);
  if (!deploymentNamespaces.has(namespace)) {
    await reads.run(`deployments/${namespace}`, async () => {
      const list = await K8s(kind.Deployment).InNamespace(namespace).WithLabel(MANAGED_BY_KEY, MANAGED_BY_VALUE).Get();
      for (const dep of list.items) deployments.fill(keyOf(dep), { apiVersion: "apps/v1", kind: "Deployment", ...dep });
      deploymentNamespaces.add(namespace);
    });
    if (deployments.known(key)) return deployments.get(key);
  }
  const read = await reads.run(`deployments/${key}`, () => get(kind.Deployment, namespace, name));
  // one the managed watch will follow; absent or a user's: asked again next time
  if (read && managed(read)) deployments.fill(key, read);
  return read;
}

/**
 * A Service from the watch (it sees every Service: absence is known too); else the namespace's
 * Services listed once (one request for all its Entanglements, issue 11); else read and keep.
 * `beforeApply`: a name we are about to create is read unless known: the watch may not have
 * delivered a user's Service created just now, and it must never be taken over.
 */
async function currentService(namespace: string, name: string, beforeApply = false): Promise<kind.Service | undefined> {
  const key = ControllerMemory.key(namespace, name);
  if (services.known(key)) return services.get(key);
  if (serviceNamespaces.complete(namespace) && !beforeApply) return undefined;
  if (!serviceNamespaces.complete(namespace) && serviceNamespaces.canList()) {
    await reads.run(`services/${namespace}`, async () => {
      serviceNamespaces.listing(namespace);
      try {
        const list = await K8s(kind.Service).InNamespace(namespace).Get();
        for (const svc of list.items) services.fill(keyOf(svc), { apiVersion: "v1", kind: "Service", ...svc });
        serviceNamespaces.listed(namespace);
      } catch (err) {
        serviceNamespaces.failed(namespace);
        throw err;
      }
    });
    if (services.known(key) || !beforeApply) return services.get(key);
  }
  const read = await reads.run(`services/${key}`, () => get(kind.Service, namespace, name));
  services.fill(key, read ?? null);
  return read;
}

/** The token Secret's check outcome, from its watch; read once when never seen. */
async function tokenSecret(namespace: string, name: string): Promise<SecretOutcome> {
  const key = ControllerMemory.key(namespace, name);
  const known = secrets.get(key);
  if (known) return known;
  const outcome = outcomeOf(await reads.run(`secrets/${key}`, () => checkTokenSecret(namespace, name)));
  // a watch event that came meanwhile is newer
  if (!secrets.has(key)) secrets.set(key, outcome);
  return outcome;
}

async function get<T extends kind.Deployment | kind.Service | Entanglement>(model: new () => T, namespace: string, name: string): Promise<T | undefined> {
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
  if (written?.metadata) crs.observe(keyOf(written), written);
  const event = readyEvent(cr.status, ready);
  if (event) await emitEvent(cr, event, ready.reason, ready.message);
  return written?.metadata?.resourceVersion;
}

/**
 * Re-reconciles the Entanglement owning a Deployment we manage, when its spec (edited by
 * someone) or its availability changed since the last reconcile.
 */
export async function reconcileOwnerOf(obj: kind.Deployment, phase?: string): Promise<void> {
  if (phase === DELETED) deployments.forget(keyOf(obj));
  // a watch's initial list serves its items without apiVersion and kind (needsApply compares them)
  else deployments.observe(keyOf(obj), { apiVersion: "apps/v1", kind: "Deployment", ...obj });
  const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === "Entanglement");
  const namespace = obj.metadata?.namespace;
  if (!owner || !namespace) return;
  if (phase === DELETED) return restoreFor(namespace, owner.name);
  if (!deploymentMatters(memory.outcome(namespace, owner.name), deploymentView(obj))) return;
  await reconcileByName(namespace, owner.name);
}

/** Re-reconciles the Entanglement whose agent runs in this pod, when the pod failed or a failure was reported. */
export async function reconcileOwnerOfPod(pod: kind.Pod, phase?: string): Promise<void> {
  const namespace = pod.metadata?.namespace;
  const instance = pod.metadata?.labels?.[ENTANGLEMENT_LABEL];
  if (!namespace || !instance) return;
  if (phase === DELETED) pods.gone(namespace, instance, pod.metadata?.name ?? "");
  else pods.observe(namespace, instance, pod as Parameters<AgentPods["observe"]>[2]);
  // a deleted pod's failure is over
  const failed = phase !== DELETED && agentFailure([pod]) !== undefined;
  // the label is the CR name, shortened with a hash when long: matched against the CRs seen (one
  // not seen yet is reconciled, pods included, when its own watch event comes)
  for (const name of memory.owners(namespace, instance)) if (podMatters(memory.outcome(namespace, name), failed)) await reconcileByName(namespace, name);
}

/** Re-reconciles every Entanglement seen in the namespace that uses this Secret. */
export async function reconcileUsersOfSecret(secret: kind.Secret, phase?: string): Promise<void> {
  const namespace = secret.metadata?.namespace ?? "";
  const name = secret.metadata?.name ?? "";
  const key = keyOf(secret);
  const users = memory.users(namespace, (links) => links.secretRef === name);
  // only the outcome of a Secret someone uses (or asked about) is kept, never its data
  if (users.length > 0 || secrets.has(key))
    secrets.set(key, phase === DELETED ? secretNotFound(namespace, name) : outcomeOf(tokenFromSecret(secret, namespace, name)));
  for (const user of users) await reconcileByName(namespace, user);
}

/** Re-reconciles every Entanglement seen in the namespace whose spec.serviceRef names this Service (created, changed, deleted). */
export async function reconcileUsersOfService(service: kind.Service, phase?: string): Promise<void> {
  const key = keyOf(service);
  serviceNamespaces.watching();
  const follow = services.known(key) || serviceNamespaces.follows(service.metadata?.namespace ?? "");
  if (phase === DELETED) {
    if (follow) services.absent(key);
  } else if (follow || managed(service)) services.observe(key, { apiVersion: "v1", kind: "Service", ...service });
  await reconcileWhere(service.metadata?.namespace, (links) => links.serviceRef === service.metadata?.name);
  const owner = service.metadata?.ownerReferences?.find((o) => o.kind === "Entanglement");
  if (phase === DELETED && owner && managed(service)) await restoreFor(service.metadata!.namespace!, owner.name);
}

/**
 * One of our objects was deleted: restored at once, unless its Entanglement is gone too (the
 * garbage collector's work, its watch event maybe not here yet): that one is read, not trusted
 * from the cache, so that nothing is re-created for a deleted owner.
 */
async function restoreFor(namespace: string, name: string): Promise<void> {
  if (!memory.outcome(namespace, name) && !crs.known(ControllerMemory.key(namespace, name))) return;
  crs.forget(ControllerMemory.key(namespace, name));
  await reconcileByName(namespace, name);
}

async function reconcileWhere(namespace: string | undefined, uses: (links: Links) => boolean): Promise<void> {
  if (!namespace) return;
  // a resync: each one runs in turn (the users of one Secret can be a thousand)
  for (const name of memory.users(namespace, uses)) await reconcileByName(namespace, name);
}

async function latest(namespace: string, name: string): Promise<Entanglement | undefined> {
  const key = ControllerMemory.key(namespace, name);
  const known = crs.get(key);
  if (known) return known;
  const read = await get(Entanglement, namespace, name);
  if (read) crs.fill(key, read);
  return read;
}

async function reconcileByName(namespace: string, name: string): Promise<void> {
  await reconcileEntanglement({ metadata: { name, namespace } } as Entanglement);
}
