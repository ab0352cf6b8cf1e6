// Manifests reconcile: apply every entry of spec.manifests to the remote cluster whose API is
// exposed on the network as spec.serviceUUID, through an in-process tunnel, with server-side
// apply; prune what was removed from the list; report per-object results. A timer resyncs
// every CR (drift: objects changed or deleted by hand are restored) and retries failures
// with backoff.
import { K8s, Log } from "pepr";
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import { Manifests, setCondition, type AppliedObject, type Condition, type ManifestsStatus } from "../crds/index.ts";
import {
  claimOf,
  declaredBy,
  declaredKeys,
  keptRecords,
  ownerId,
  parseEntries,
  toPrune,
  objectKey,
  withOwner,
  type RemoteObject,
} from "../remote/manifests.ts";
import { TunnelPool } from "../remote/tunnels.ts";
import { checkTokenSecret } from "../k8s/secrets.ts";
import { emitEvent } from "../k8s/events.ts";
import { moduleConfig } from "../config.ts";
import { apiMessage, notFound, sameJson } from "../k8s/api.ts";
import { serialize } from "./serialize.ts";

export const ORPHAN_ANNOTATION = "entangle-proxy.kairos.io/orphan";
const PEPR_FINALIZER = "pepr.dev/finalizer";
const FIELD_MANAGER = "entangle-proxy";
const RESYNC_MS = Number(process.env.ENTANGLE_RESYNC_SECONDS ?? 30) * 1000;
const REQUEST_TIMEOUT_MS = 15_000;

let pool: TunnelPool | undefined;
const retries = new Map<string, { timer: NodeJS.Timeout; delay: number }>();
let resync: NodeJS.Timeout | undefined;

function tunnels(): TunnelPool {
  const cfg = moduleConfig();
  pool ??= new TunnelPool(cfg.peers, cfg.p2pListen);
  return pool;
}

const clients = new Map<string, KubernetesObjectApi>();

/**
 * A Kubernetes client whose "API server" is the tunnel to the remote cluster; one per tunnel
 * (token, service and port: a port freed by an idle tunnel may come back for another one), so
 * its cache of the remote API's resources survives from one resync to the next.
 */
async function remoteClient(token: string, service: string): Promise<KubernetesObjectApi> {
  const port = await tunnels().port(token, service);
  const key = `${token}\0${service}\0${port}`;
  const known = clients.get(key);
  if (known) return known;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: service, server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "entangle" }],
    contexts: [{ name: service, cluster: service, user: "entangle", namespace: "default" }],
    currentContext: service,
  });
  const client = KubernetesObjectApi.makeApiClient(kc);
  clients.set(key, client);
  return client;
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(() => reject(new Error(`${what}: remote API did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS)),
  );
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Errors that mean "could not reach the remote API" rather than "the API refused". */
function unreachable(err: unknown): boolean {
  const e = err as { code?: number | string; message?: string };
  return typeof e?.code !== "number" && !(e as { body?: unknown }).body;
}

/**
 * Why the remote cluster cannot take this kind, or undefined if it can. The client resolves the
 * kind before each request; left to it, an unknown group/version reads "404 page not found" and
 * an unknown kind in a known one looked like a lost connection (an Error without a code).
 * Answers are cached by the client: no extra request once a group/version is known.
 */
// KubernetesObjectApi.resource is protected but is exactly the client's own cached lookup
type KindLookup = { resource(apiVersion: string, kind: string): Promise<unknown> };

async function missingKind(client: KubernetesObjectApi, obj: RemoteObject): Promise<string | undefined> {
  try {
    const resource = await withTimeout((client as unknown as KindLookup).resource(obj.apiVersion, obj.kind), `look up ${obj.kind}`);
    return resource ? undefined : `the remote cluster has no kind ${obj.kind} in ${obj.apiVersion}`;
  } catch (err) {
    if (notFound(err)) return `the remote cluster does not serve ${obj.apiVersion} (kind ${obj.kind}): is its CRD installed?`;
    throw err;
  }
}

function remoteMessage(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  if (typeof e?.body === "string") {
    try {
      return (JSON.parse(e.body) as { message?: string }).message ?? e.body;
    } catch {
      return e.body;
    }
  }
  if (e?.body && typeof e.body === "object") return (e.body as { message?: string }).message ?? JSON.stringify(e.body);
  return apiMessage(err);
}

export function reconcileManifests(event: Manifests): Promise<void> {
  ensureResync();
  const key = `${event.metadata?.namespace}/${event.metadata?.name}`;
  return serialize(key, async () => {
    // the current object: status.applied decides what gets pruned, so never act on a stale copy
    let cr: Manifests;
    try {
      cr = await K8s(Manifests).InNamespace(event.metadata!.namespace!).Get(event.metadata!.name!);
    } catch (err) {
      if (!notFound(err)) throw err;
      return clearRetry(key);
    }
    await reconcileNow(cr);
  });
}

async function reconcileNow(cr: Manifests): Promise<void> {
  if (cr.metadata?.deletionTimestamp) {
    // Pepr finalizes on UPDATE events only: a CR deleted while the module was down arrives as
    // ADDED (or via resync) and would keep its finalizer forever, so release it here too.
    if (cr.metadata.finalizers?.includes(PEPR_FINALIZER)) {
      await finalizeManifests(cr);
      await releaseFinalizer(cr);
    }
    return;
  }
  const key = `${cr.metadata!.namespace}/${cr.metadata!.name}`;
  const namespace = cr.metadata!.namespace!;
  const secret = await checkTokenSecret(namespace, cr.spec!.secretRef);
  if (!secret.ok) {
    await writeStatus(cr, { type: "Ready", status: "False", reason: secret.reason, message: secret.message }, cr.status?.applied);
    scheduleRetry(key);
    return;
  }

  const parsed = parseEntries(cr.spec?.manifests);
  const results: AppliedObject[] = [];
  let client: KubernetesObjectApi;
  try {
    client = await remoteClient(secret.token, cr.spec!.serviceUUID);
  } catch (err) {
    await writeStatus(cr, { type: "Ready", status: "False", reason: "RemoteUnreachable", message: apiMessage(err) }, cr.status?.applied);
    scheduleRetry(key);
    return;
  }

  let lostContact: string | undefined;
  const conflicts: string[] = [];
  for (const entry of parsed) {
    // malformed objects fail alone; what this entry applied before stays tracked (not pruned)
    for (const error of entry.errors) results.push({ index: entry.index, state: "Failed", message: error });
    results.push(...keptRecords(cr.status?.applied, entry));
    for (const obj of entry.objects) {
      const ref = { index: entry.index, apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name };
      if (lostContact) {
        results.push({ ...ref, state: "Failed", message: lostContact });
        continue;
      }
      try {
        const missing = await missingKind(client, obj);
        if (missing) {
          results.push({ ...ref, state: "Failed", message: missing });
          continue;
        }
        const what = `${obj.kind} ${obj.metadata.namespace ? obj.metadata.namespace + "/" : ""}${obj.metadata.name}`;
        const refusal = await refuseClaim(client, cr, obj, what);
        if (refusal) {
          results.push({ ...ref, state: "Failed", message: refusal });
          conflicts.push(refusal);
          continue;
        }
        const applied = await withTimeout(
          client.patch(withOwner(obj, ownerId(cr)) as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
          `apply ${obj.kind} ${obj.metadata.name}`,
        );
        results.push({ ...ref, namespace: applied.metadata?.namespace, state: "Applied" });
      } catch (err) {
        const message = remoteMessage(err);
        if (unreachable(err)) lostContact = `remote unreachable: ${message}`;
        results.push({ ...ref, state: "Failed", message: lostContact ?? message });
      }
    }
  }

  if (lostContact) {
    // keep the previous record of everything: nothing is pruned or forgotten while offline
    await writeStatus(
      cr,
      { type: "Ready", status: "False", reason: "RemoteUnreachable", message: `${lostContact}; retrying` },
      mergeForRetry(cr.status?.applied, results),
    );
    scheduleRetry(key);
    return;
  }

  const prune = toPrune(cr.status?.applied, results);
  const othersDeclare = prune.length > 0 ? await declaredByOthers(cr) : new Set<string>();
  for (const gone of prune) {
    try {
      if (!(await deleteIfOurs(client, cr, gone, othersDeclare))) continue;
      await emitEvent(
        cr,
        "Normal",
        "Pruned",
        `deleted ${gone.kind} ${gone.namespace ? gone.namespace + "/" : ""}${gone.name} from the remote cluster (removed from spec.manifests)`,
      );
    } catch (err) {
      if (!notFound(err)) results.push({ ...gone, state: "Applied", message: `could not delete: ${remoteMessage(err)}` });
    }
  }

  const failed = results.filter((r) => r.state === "Failed");
  const ready: Omit<Condition, "lastTransitionTime"> =
    failed.length === 0
      ? { type: "Ready", status: "True", reason: "Applied", message: `${results.length} object(s) applied to ${cr.spec!.serviceUUID}` }
      : {
          type: "Ready",
          status: "False",
          reason: conflicts.length > 0 ? "OwnershipConflict" : "ApplyFailed",
          message: `${failed.length} of ${results.length} failed: ${conflicts[0] ?? failed[0].message}`,
        };
  await writeStatus(cr, ready, results);
  if (failed.length > 0) scheduleRetry(key);
  else clearRetry(key);
}

function mergeForRetry(previous: AppliedObject[] | undefined, now: AppliedObject[]): AppliedObject[] {
  const seen = new Set(now.filter((n) => n.state === "Applied").map(objectKey));
  return [
    ...now.filter((n) => n.state === "Applied"),
    ...(previous ?? []).filter((p) => p.state === "Applied" && !seen.has(objectKey(p))),
    ...now.filter((n) => n.state === "Failed"),
  ];
}

async function writeStatus(cr: Manifests, ready: Omit<Condition, "lastTransitionTime">, applied: AppliedObject[] | undefined): Promise<void> {
  const old = cr.status ?? {};
  const status: ManifestsStatus & { appliedCount?: number } = {
    observedGeneration: cr.metadata?.generation,
    conditions: setCondition(old.conditions, { ...ready, observedGeneration: cr.metadata?.generation }),
    applied: applied ?? [],
    appliedCount: (applied ?? []).filter((a) => a.state === "Applied").length,
    lastSync: old.lastSync,
  };
  const prevReady = old.conditions?.find((c) => c.type === "Ready");
  if (sameJson({ ...old, lastSync: undefined }, { ...status, lastSync: undefined })) return;
  status.lastSync = new Date().toISOString();
  try {
    await K8s(Manifests).PatchStatus({ metadata: { name: cr.metadata!.name, namespace: cr.metadata!.namespace }, status });
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  if (prevReady?.status !== ready.status || prevReady?.reason !== ready.reason) {
    await emitEvent(cr, ready.status === "True" ? "Normal" : "Warning", ready.reason, ready.message);
  }
}

/** Finalizer: delete everything this CR applied, unless annotated to orphan. */
export async function finalizeManifests(cr: Manifests): Promise<boolean> {
  const key = `${cr.metadata!.namespace}/${cr.metadata!.name}`;
  clearRetry(key);
  const applied = (cr.status?.applied ?? []).filter((a) => a.state === "Applied" && a.name);
  if (applied.length === 0) return true;
  if (cr.metadata?.annotations?.[ORPHAN_ANNOTATION] === "true") {
    Log.info({ key, objects: applied.length }, "Manifests deleted with orphan annotation: remote objects kept");
    return true;
  }
  const secret = await checkTokenSecret(cr.metadata!.namespace!, cr.spec!.secretRef);
  let problem = secret.ok ? undefined : secret.message;
  if (secret.ok) {
    try {
      const client = await remoteClient(secret.token, cr.spec!.serviceUUID);
      const othersDeclare = await declaredByOthers(cr);
      for (const a of applied.reverse()) {
        try {
          await deleteIfOurs(client, cr, a, othersDeclare);
        } catch (err) {
          if (notFound(err)) continue;
          problem = remoteMessage(err);
          if (unreachable(err)) break;
        }
      }
    } catch (err) {
      problem = apiMessage(err);
    }
  }
  if (problem) {
    // never block deletion forever: say loudly what was left behind
    await emitEvent(cr, "Warning", "RemoteObjectsOrphaned", `could not delete remote objects (${problem}); they were left in the remote cluster`);
    Log.warn({ key, problem }, "remote objects orphaned");
  }
  return true;
}

function scheduleRetry(key: string): void {
  const prev = retries.get(key);
  if (prev) clearTimeout(prev.timer);
  const delay = Math.min((prev?.delay ?? 1_000) * 2, 30_000);
  const timer = setTimeout(() => void reconcileByKey(key), delay);
  timer.unref();
  retries.set(key, { timer, delay });
}

function clearRetry(key: string): void {
  const prev = retries.get(key);
  if (prev) clearTimeout(prev.timer);
  retries.delete(key);
}

/** An unexpected error in one CR's reconcile: logged, and tried again later like any failure. */
function reconcileFailed(cr: Manifests, err: unknown): void {
  const key = `${cr.metadata?.namespace}/${cr.metadata?.name}`;
  Log.error({ key, err: apiMessage(err) }, "manifests reconcile failed");
  scheduleRetry(key);
}

async function reconcileByKey(key: string): Promise<void> {
  const [namespace, name] = key.split("/");
  try {
    await reconcileManifests({ metadata: { namespace, name } } as Manifests);
  } catch (err) {
    Log.warn({ key, err: apiMessage(err) }, "manifests retry failed");
  }
}

function ensureResync(): void {
  if (resync) return;
  resync = setInterval(async () => {
    try {
      const list = await K8s(Manifests).Get();
      // one CR's failure must not keep the others from their resync
      for (const cr of list.items) await reconcileManifests(cr).catch((err) => reconcileFailed(cr, err));
    } catch (err) {
      Log.warn({ err: apiMessage(err) }, "manifests resync failed");
    }
  }, RESYNC_MS);
  resync.unref();
}

async function releaseFinalizer(cr: Manifests): Promise<void> {
  const finalizers = (cr.metadata?.finalizers ?? []).filter((f) => f !== PEPR_FINALIZER);
  try {
    await K8s(Manifests, { name: cr.metadata!.name, namespace: cr.metadata!.namespace }).Patch([
      { op: "replace", path: "/metadata/finalizers", value: finalizers },
    ]);
  } catch (err) {
    if (!notFound(err)) throw err;
  }
}

/**
 * Why this CR must not apply `obj`, or undefined: an existing remote object is applied only if
 * it is ours (lib/remote/manifests.ts claimOf), or was left by a Manifests that no longer exists.
 */
async function refuseClaim(client: KubernetesObjectApi, cr: Manifests, obj: RemoteObject, what: string): Promise<string | undefined> {
  const existing = await readRemote(
    client,
    ref({ index: 0, state: "Applied", apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name }),
  );
  const recorded = (cr.status?.applied ?? []).some(
    (a) => a.state === "Applied" && a.kind === obj.kind && a.apiVersion === obj.apiVersion && a.name === obj.metadata.name,
  );
  const claim = claimOf(existing, ownerId(cr), recorded, what);
  if (claim.mine) return undefined;
  if (claim.otherCr && !(await manifestsAlive(claim.otherCr))) return undefined;
  return claim.message;
}

async function readRemote(client: KubernetesObjectApi, target: KubernetesObject): Promise<KubernetesObject | undefined> {
  try {
    return await withTimeout(client.read(target as KubernetesObject & { metadata: { name: string } }), `read ${target.kind} ${target.metadata?.name}`);
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

async function manifestsAlive(id: string): Promise<boolean> {
  const [namespace, name] = id.split("/");
  try {
    const other = await K8s(Manifests).InNamespace(namespace).Get(name);
    return !other.metadata?.deletionTimestamp;
  } catch (err) {
    if (notFound(err)) return false;
    throw err;
  }
}

/** Objects that other live Manifests with the same serviceUUID declare: never ours to delete. */
async function declaredByOthers(cr: Manifests): Promise<Set<string>> {
  const all = await K8s(Manifests).Get();
  const others = all.items.filter((o) => ownerId(o) !== ownerId(cr) && !o.metadata?.deletionTimestamp && o.spec?.serviceUUID === cr.spec?.serviceUUID);
  return declaredKeys(others.flatMap((o) => parseEntries(o.spec?.manifests)));
}

/** Deletes a recorded object unless another CR claims or declares it; true if deleted. */
async function deleteIfOurs(client: KubernetesObjectApi, cr: Manifests, a: AppliedObject, othersDeclare: Set<string>): Promise<boolean> {
  const existing = await readRemote(client, ref(a));
  if (!existing) return false;
  const what = `${a.kind} ${a.namespace ? a.namespace + "/" : ""}${a.name}`;
  const claim = claimOf(existing, ownerId(cr), true, what);
  const left = !claim.mine ? claim.message : declaredBy(othersDeclare, a) ? `${what} is still declared by another Manifests: left in place` : undefined;
  if (left) {
    await emitEvent(cr, "Normal", "LeftForOtherOwner", left);
    return false;
  }
  // delete exactly the object we looked at, not one recreated meanwhile by someone else
  await withTimeout(
    client.delete(ref(a), undefined, undefined, undefined, undefined, undefined, { preconditions: { uid: existing.metadata?.uid } }),
    `delete ${a.kind} ${a.name}`,
  );
  return true;
}

/** What the Kubernetes client needs to address an object we recorded in status. */
function ref(a: AppliedObject): KubernetesObject {
  return { apiVersion: a.apiVersion, kind: a.kind, metadata: { name: a.name, namespace: a.namespace } };
}

export type { RemoteObject };
