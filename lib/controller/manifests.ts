// Manifests reconcile: apply every entry of spec.manifests to the remote cluster whose API is
// exposed on the network as spec.serviceUUID, through an in-process tunnel, with server-side
// apply; prune what was removed from the list; report per-object results. A timer resyncs
// every CR (drift: objects changed or deleted by hand are restored) and retries failures
// with backoff.
import { K8s, Log } from "pepr";
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import { Manifests, setCondition, type AppliedObject, type Condition, type ManifestsStatus } from "../crds/index.ts";
import { keptRecords, parseEntries, toPrune, objectKey, type RemoteObject } from "../remote/manifests.ts";
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
        const applied = await withTimeout(
          client.patch(obj as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
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

  for (const gone of toPrune(cr.status?.applied, results)) {
    try {
      await withTimeout(client.delete(ref(gone)), `delete ${gone.kind} ${gone.name}`);
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
      : { type: "Ready", status: "False", reason: "ApplyFailed", message: `${failed.length} of ${results.length} failed: ${failed[0].message}` };
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
      for (const a of applied.reverse()) {
        try {
          await withTimeout(client.delete(ref(a)), `delete ${a.kind} ${a.name}`);
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

/** What the Kubernetes client needs to address an object we recorded in status. */
function ref(a: AppliedObject): KubernetesObject {
  return { apiVersion: a.apiVersion, kind: a.kind, metadata: { name: a.name, namespace: a.namespace } };
}

export type { RemoteObject };
