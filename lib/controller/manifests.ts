// Manifests reconcile: apply every entry of spec.manifests to the remote cluster whose API is
// exposed on the network as spec.serviceUUID, through an in-process tunnel, with server-side
// apply; prune what was removed from the list; report per-object results. A timer resyncs
// every CR (drift: objects changed or deleted by hand are restored) and retries failures
// with backoff.
import { K8s, Log } from "pepr";
import type { KubernetesObjectApi, KubernetesObject } from "@kubernetes/client-node";
import { Manifests, type AppliedObject, type Condition, type ManifestsStatus } from "../crds/index.ts";
import type { FormerTarget, ManifestsTarget } from "../crds/manifests.ts";
import {
  claimOf,
  declaredBy,
  holdsAll,
  keptRecords,
  ownerId,
  parseEntries,
  placed,
  toPrune,
  withOwner,
  writeAhead,
  type ParsedEntry,
  type RemoteObject,
} from "../remote/manifests.ts";
import { TunnelPool, agentTunnels } from "../remote/tunnels.ts";
import { applyObject, createUnread, deleteRemote, kubeClient, listRemote, missingKind, namespacedKind, readRemote, refOf } from "../remote/client.ts";
import { forbidden } from "../remote/fallback.ts";
import { afterAttempt, describeObjects, describeTarget, effectiveTarget, gaveUpMessage, givenUp, retarget, targetOf } from "../remote/targets.ts";
import { checkTokenSecret, type SecretCheck } from "../k8s/secrets.ts";
import { emitEvent } from "../k8s/events.ts";
import { moduleConfig } from "../config.ts";
import { apiMessage, notFound } from "../k8s/api.ts";
import { limiter, serialize } from "./serialize.ts";
import { ManifestsIndex } from "./manifests-index.ts";
import { usableCopy } from "./caches.ts";
import { keepsRemoteObjects } from "../remote/compat.ts";
import { appliedCondition, deletionTargets, mergeForRetry, remoteMessage, unreachable } from "../remote/outcome.ts";
import {
  aheadStatus,
  deleteClaim,
  failedRecord,
  leaveReason,
  leftByPrune,
  nextRetryDelay,
  nextStatus,
  orphanedMessage,
  priorRecord,
  pruneGaveUpMessage,
  pruneGivenUp,
  readyChanged,
  settledEvent,
  type Sighting,
} from "../remote/status.ts";
import { RemoteSnapshot, SNAPSHOT_LIST_LIMIT } from "../remote/snapshot.ts";

const PEPR_FINALIZER = "pepr.dev/finalizer";
const RESYNC_MS = Number(process.env.ENTANGLE_RESYNC_SECONDS ?? 30) * 1000;
/** Tests only (test/e2e/chaos.test.ts): the reconcile stops for good after applying the object so named, before its status write. */
const HOLD_AFTER_APPLY = process.env.ENTANGLE_TEST_HOLD_AFTER_APPLY;

const retries = new Map<string, { timer: NodeJS.Timeout; delay: number }>();
let resync: NodeJS.Timeout | undefined;
let pool: TunnelPool<KubernetesObjectApi> | undefined;
/** Each CR's resourceVersion after our last write to it (status, finalizer), by "namespace/name". */
const written = new Map<string, string>();
/** Token Secret checks made in the last SECRET_MEMO_MS, by "namespace/name": a burst or a resync reads each Secret once. */
const secretChecks = new Map<string, { at: number; check: Promise<SecretCheck> }>();
const SECRET_MEMO_MS = 1000;
/** The generation each CR's last complete reconcile was for, by "namespace/name". */
const reconciled = new Map<string, number>();
/**
 * Reconciles at a time, across CRs (one at a time per CR). Each mostly waits on the remote
 * cluster: one at a time, 200 Manifests of 5 objects took 30 s to create and 64 s to delete.
 */
const MAX_CONCURRENT_RECONCILES = 8;
const slot = limiter(MAX_CONCURRENT_RECONCILES);
let resyncing = false;
/** Every CR and what it declares, from the watch and the resync's list (declaredByOthers). */
const index = new ManifestsIndex();
/** uids of CRs whose finalizer we released: an older copy (a resync's list item) is not finalized again. */
const released = new Map<string, number>();
const RELEASED_KEEP_MS = 10 * 60_000;

/** A client of the remote cluster's API through the tunnel to `service`; it goes with the tunnel once idle. */
function remoteClient(token: string, service: string): Promise<KubernetesObjectApi> {
  const cfg = moduleConfig();
  pool ??= new TunnelPool(agentTunnels(cfg.peers, cfg.p2pListen), (port) => kubeClient(port));
  return pool.get(token, service);
}

/**
 * A watch event: its own status write's echo (and a converged CR at restart) is left to the
 * resync. The reconcile goes on in the background: Pepr waits for it before the next event.
 */
export function onManifestsEvent(event: Manifests): Promise<void> {
  ensureResync();
  index.observe(event);
  if (!settledEvent(event, PEPR_FINALIZER)) void reconcileManifests(event).catch((err) => reconcileFailed(event, err));
  return Promise.resolve();
}

/** A CR gone from the API. */
export function onManifestsDeleted(cr: Manifests): void {
  index.forget(cr);
}

/** `snapshot`: a resync's lists of the remote objects, shared by all its CRs (RemoteSnapshot). */
export function reconcileManifests(event: Manifests, snapshot?: RemoteSnapshot): Promise<void> {
  ensureResync();
  const key = `${event.metadata?.namespace}/${event.metadata?.name}`;
  return serialize(key, () =>
    slot(async () => {
      // status.applied decides what gets pruned, so never act on a copy older than our last write:
      // a watch event or a resync's list item is used as it is unless that write came after it
      // (issue 11: a read per reconcile); a retry by name reads the CR
      let cr: Manifests;
      // (a list's items come without apiVersion and kind: our Events name them)
      if (upToDate(key, event)) cr = { apiVersion: "entangle-proxy.kairos.io/v1alpha1", kind: "Manifests", ...event };
      else if (coveredEcho(key, event)) return;
      else
        try {
          cr = await K8s(Manifests).InNamespace(event.metadata!.namespace!).Get(event.metadata!.name!);
        } catch (err) {
          if (!notFound(err)) throw err;
          written.delete(key);
          reconciled.delete(key);
          return clearRetry(key);
        }
      await reconcileNow(cr, snapshot);
    }),
  );
}

function upToDate(key: string, cr: Manifests): boolean {
  return usableCopy(cr, written.get(key));
}

/**
 * An event older than our last write, of a generation our last complete reconcile was for and
 * not a deletion: the echo of our own finalizer patch, a change a later reconcile already saw.
 * (A create was reconciled twice: once for ADDED, once more, with a read, for that echo.)
 */
function coveredEcho(key: string, event: Manifests): boolean {
  const generation = event.metadata?.generation;
  const whole = event.metadata?.resourceVersion !== undefined && event.spec !== undefined;
  return whole && !event.metadata?.deletionTimestamp && generation !== undefined && reconciled.get(key) === generation;
}

function wrote(cr: Manifests, answer: Manifests | undefined): void {
  const version = answer?.metadata?.resourceVersion;
  if (version !== undefined) written.set(`${cr.metadata!.namespace}/${cr.metadata!.name}`, version);
}

/** checkTokenSecret, shared by the reconciles of the next SECRET_MEMO_MS (the token is kept no longer). */
function tokenSecret(namespace: string, name: string): Promise<SecretCheck> {
  const key = `${namespace}/${name}`;
  const now = Date.now();
  const memo = secretChecks.get(key);
  if (memo && now - memo.at < SECRET_MEMO_MS) return memo.check;
  const check = checkTokenSecret(namespace, name);
  secretChecks.set(key, { at: now, check });
  const forget = () => {
    if (secretChecks.get(key)?.check === check) secretChecks.delete(key);
  };
  check.catch(forget);
  setTimeout(forget, SECRET_MEMO_MS).unref();
  return check;
}

async function reconcileNow(cr: Manifests, snapshot?: RemoteSnapshot): Promise<void> {
  if (cr.metadata?.deletionTimestamp) {
    if (released.has(cr.metadata.uid!)) return;
    // the only finalizing path (no Pepr Finalize(): capabilities/entangle-proxy.ts), for an
    // UPDATE as for a CR deleted while the module was down (ADDED, or a resync's list item)
    if (cr.metadata.finalizers?.includes(PEPR_FINALIZER)) {
      await finalizeManifests(cr);
      await releaseFinalizer(cr);
    }
    return;
  }
  // the finalizer is ours to add, before anything is applied remotely (no Pepr Finalize() and
  // its webhook: capabilities/entangle-proxy.ts): without it, deleting the CR would leave its
  // remote objects behind
  if (!cr.metadata?.finalizers?.includes(PEPR_FINALIZER)) await addFinalizer(cr);
  const key = `${cr.metadata!.namespace}/${cr.metadata!.name}`;
  const namespace = cr.metadata!.namespace!;
  const target = targetOf(cr.spec!);
  const secret = await tokenSecret(namespace, target.secretRef);

  // a changed serviceUUID or secretRef: what is in the former target is deleted there first
  const recorded = cr.status?.target && (await sameTokenTarget(namespace, cr.status.target, target, secret.ok ? secret.token : undefined));
  const moved = retarget({ ...cr.status, target: recorded }, target);
  const formerTargets = await clearFormerTargets(cr, moved.formerTargets);
  let previous = moved.applied;
  /** the status the final write compares against: the CR's, or the write-ahead's */
  let base = cr.status;
  const status = (ready: Omit<Condition, "lastTransitionTime">, applied: AppliedObject[], pruneLeft?: AppliedObject[]) =>
    writeStatus(cr, base, ready, applied, target, formerTargets, pruneLeft);

  if (!secret.ok) {
    await status({ type: "Ready", status: "False", reason: secret.reason, message: secret.message }, previous);
    scheduleRetry(key);
    return;
  }

  const results: AppliedObject[] = [];
  let client: KubernetesObjectApi;
  try {
    client = await remoteClient(secret.token, target.serviceUUID);
  } catch (err) {
    await status({ type: "Ready", status: "False", reason: "RemoteUnreachable", message: apiMessage(err) }, previous);
    scheduleRetry(key);
    return;
  }
  const parsed = await placeEntries(client, parseEntries(cr.spec?.manifests));

  // objects no record names yet are recorded Pending before any apply (one more status write
  // when a reconcile adds objects, none on a resync): killed between an apply and the status
  // write below, the module leaves nothing that its next reconcile or the finalizer does not know
  const ahead = writeAhead(previous, parsed);
  if (ahead) {
    base = await writeAheadRecord(cr, aheadStatus(cr.status, ahead, target, formerTargets));
    previous = ahead;
  }

  let lostContact: string | undefined;
  const conflicts: string[] = [];
  for (const entry of parsed) {
    // malformed objects fail alone; what this entry applied before stays tracked (not pruned)
    for (const error of entry.errors) results.push({ index: entry.index, state: "Failed", message: error });
    results.push(...keptRecords(previous, entry));
    for (const obj of entry.objects) {
      const ref: AppliedObject = {
        index: entry.index,
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        namespace: obj.metadata.namespace,
        name: obj.metadata.name,
        state: "Applied",
      };
      // the record that says it was applied before, looked up once (priorRecord)
      const prior = priorRecord(previous, obj);
      const vouched = prior?.state === "Applied";
      let sighting: Sighting = { seen: "unknown" };
      if (lostContact) {
        results.push(failedRecord(ref, lostContact, prior, sighting));
        continue;
      }
      try {
        const missing = await missingKind(client, obj);
        if (missing) {
          results.push(failedRecord(ref, missing, prior, { seen: "absent" }));
          continue;
        }
        const desired = withOwner(obj, ownerId(cr));
        const atGeneration = cr.status?.observedGeneration === cr.metadata?.generation;
        // a resync: an object its list shows as applied by us and unchanged needs no read and no write
        // (desired carries our owner annotation); anything else is read again below
        const seen = snapshot && atGeneration && vouched && (await snapshot.find(client, prior!));
        if (seen && holdsAll(seen, desired)) {
          results.push({ ...ref, namespace: prior!.namespace });
          continue;
        }
        let existing: KubernetesObject | undefined;
        try {
          existing = await readRemote(client, refOf(ref));
        } catch (err) {
          if (!forbidden(err)) throw err;
          const created = await createUnread(client, desired, remoteMessage(err));
          results.push({ ...ref, namespace: created.metadata?.namespace });
          continue;
        }
        const refusal = await refuseClaim(cr, vouched, obj, existing);
        if (refusal) {
          results.push(failedRecord(ref, refusal, prior, { seen: "theirs" }));
          conflicts.push(refusal);
          continue;
        }
        sighting = existing ? { seen: "ours", namespace: existing.metadata?.namespace } : { seen: "absent" };
        // a resync of an object applied at this generation and unchanged since: nothing to write
        const current = existing !== undefined && atGeneration && vouched;
        const applied = current && holdsAll(existing, desired) ? existing! : await applyObject(client, desired, existing);
        results.push({ ...ref, namespace: applied.metadata?.namespace });
        if (obj.metadata.name === HOLD_AFTER_APPLY) await new Promise(() => {});
      } catch (err) {
        const message = remoteMessage(err);
        if (unreachable(err)) lostContact = `remote unreachable: ${message}`;
        // seen absent, then an apply cut short: it may have reached the remote
        results.push(failedRecord(ref, lostContact ?? message, prior, lostContact && sighting.seen === "absent" ? { seen: "unknown" } : sighting));
      }
    }
  }

  if (lostContact) {
    // keep the previous record of everything: nothing is pruned or forgotten while offline
    await status({ type: "Ready", status: "False", reason: "RemoteUnreachable", message: `${lostContact}; retrying` }, mergeForRetry(previous, results));
    scheduleRetry(key);
    return;
  }

  const pruneLeft = await pruneRemoved(client, cr, target, toPrune(previous, results));
  results.push(...pruneLeft);

  const ready = appliedCondition(results, conflicts, target.serviceUUID);
  await status(ready, results, pruneLeft);
  reconciled.set(key, cr.metadata!.generation!);
  // a former target, or a removed object, given up (refused MAX_REFUSALS times) waits for a spec change
  if (ready.status !== "True" || formerTargets.some((f) => !givenUp(f)) || pruneLeft.some((a) => !pruneGivenUp(a))) scheduleRetry(key);
  else clearRetry(key);
}

/**
 * Deletes the objects removed from spec.manifests; returns the records of those it could not
 * delete (kept, retried). One the remote refused MAX_REFUSALS times in a row is no longer tried
 * until the spec changes: a DeleteRefused Warning says so once, the Pruned condition for as long.
 */
async function pruneRemoved(client: KubernetesObjectApi, cr: Manifests, target: ManifestsTarget, prune: AppliedObject[]): Promise<AppliedObject[]> {
  const othersDeclare = prune.length > 0 ? await declaredByOthers(cr, target.serviceUUID) : new Set<string>();
  const specChanged = cr.status?.observedGeneration !== cr.metadata?.generation;
  const left: AppliedObject[] = [];
  const givenUpNow: AppliedObject[] = [];
  for (const gone of prune) {
    if (pruneGivenUp(gone) && !specChanged) {
      left.push(gone);
      continue;
    }
    try {
      if (!(await deleteIfOurs(client, cr, gone, othersDeclare))) continue;
      await emitEvent(cr, "Normal", "Pruned", `deleted ${describeObjects([gone])} from the remote cluster (removed from spec.manifests)`);
    } catch (err) {
      if (notFound(err)) continue;
      const still = leftByPrune(gone, remoteMessage(err), forbidden(err), specChanged);
      if (pruneGivenUp(still)) givenUpNow.push(still);
      left.push(still);
    }
  }
  if (givenUpNow.length > 0) await emitEvent(cr, "Warning", "DeleteRefused", pruneGaveUpMessage(givenUpNow, target));
  return left;
}

/**
 * The entries' objects as they will be applied, before anything is recorded (placed): a
 * cluster-scoped kind's without the namespace its YAML may name. Each kind is looked up once (the
 * client keeps the answers for the apply's missingKind); after a look-up that fails, the rest
 * stay as written and the apply reports the failure.
 */
async function placeEntries(client: KubernetesObjectApi, entries: ParsedEntry[]): Promise<ParsedEntry[]> {
  const scopes = new Map<string, boolean | undefined>();
  try {
    for (const obj of entries.flatMap((e) => e.objects)) {
      const kind = `${obj.apiVersion}/${obj.kind}`;
      if (!scopes.has(kind)) scopes.set(kind, await namespacedKind(client, obj));
    }
  } catch {
    // reported by the apply
  }
  return entries.map((e) => ({ ...e, objects: e.objects.map((o) => placed(o, scopes.get(`${o.apiVersion}/${o.kind}`))) }));
}

/** status.target unless the new secretRef holds the same token for the same service (same cluster). */
async function sameTokenTarget(
  namespace: string,
  recorded: ManifestsTarget,
  current: ManifestsTarget,
  token: string | undefined,
): Promise<ManifestsTarget | undefined> {
  if (recorded.serviceUUID !== current.serviceUUID || recorded.secretRef === current.secretRef || token === undefined) return recorded;
  const old = await tokenSecret(namespace, recorded.secretRef);
  return effectiveTarget(recorded, current, { recorded: old.ok ? old.token : undefined, current: token });
}

/**
 * Deletes this CR's objects from targets the spec no longer names; returns those that still
 * hold some (retried, except a target that refused MAX_REFUSALS times in a row: until the spec
 * changes). The orphan annotation leaves them, as it does on deletion.
 */
async function clearFormerTargets(cr: Manifests, formers: FormerTarget[]): Promise<FormerTarget[]> {
  if (formers.length === 0) return formers;
  if (keepsRemoteObjects(cr.metadata?.annotations)) {
    for (const f of formers)
      await emitEvent(cr, "Normal", "RemoteObjectsOrphaned", `left ${describeObjects(f.applied)} in ${describeTarget(f)} (orphan annotation)`);
    return [];
  }
  const specChanged = cr.status?.observedGeneration !== cr.metadata?.generation;
  const remaining: FormerTarget[] = [];
  for (const former of formers) {
    if (givenUp(former) && !specChanged) {
      remaining.push(former);
      continue;
    }
    const outcome = await deleteFromTarget(cr, former, former.applied);
    if (outcome.deleted.length > 0)
      await emitEvent(cr, "Normal", "FormerTargetCleared", `deleted ${describeObjects(outcome.deleted)} from ${describeTarget(former)}`);
    const still = afterAttempt(former, outcome.left, outcome, specChanged);
    if (!still) continue;
    if (givenUp(still)) await emitEvent(cr, "Warning", "DeleteRefused", gaveUpMessage(still));
    else if (outcome.problem !== former.message)
      await emitEvent(cr, "Warning", "RemoteObjectsLeft", `${describeObjects(still.applied)} left in ${describeTarget(former)}: ${outcome.problem}; retrying`);
    remaining.push(still);
  }
  return remaining;
}

interface Deletion {
  deleted: AppliedObject[];
  /** records that could not be deleted (retried), and why */
  left: AppliedObject[];
  problem?: string;
  /** every record left is there because the remote refused (403) to let us read or delete it */
  refused: boolean;
}

/** Deletes recorded objects from one target, last applied first, skipping what another CR claims or declares. */
async function deleteFromTarget(cr: Manifests, target: ManifestsTarget, records: AppliedObject[]): Promise<Deletion> {
  const secret = await tokenSecret(cr.metadata!.namespace!, target.secretRef);
  if (!secret.ok) return { deleted: [], left: records, problem: secret.message, refused: false };
  let client: KubernetesObjectApi;
  try {
    client = await remoteClient(secret.token, target.serviceUUID);
  } catch (err) {
    return { deleted: [], left: records, problem: `remote unreachable: ${apiMessage(err)}`, refused: false };
  }
  const othersDeclare = await declaredByOthers(cr, target.serviceUUID);
  const deleted: AppliedObject[] = [];
  const left: AppliedObject[] = [];
  let problem: string | undefined;
  let lost = false;
  let refused = true;
  for (const a of [...records].reverse()) {
    if (lost) {
      left.unshift(a);
      continue;
    }
    try {
      if (await deleteIfOurs(client, cr, a, othersDeclare)) deleted.unshift(a);
    } catch (err) {
      if (notFound(err)) continue;
      lost = unreachable(err);
      refused &&= forbidden(err);
      problem = lost ? `remote unreachable: ${remoteMessage(err)}` : remoteMessage(err);
      left.unshift(a);
    }
  }
  return { deleted, left, problem, refused: refused && left.length > 0 };
}

async function writeStatus(
  cr: Manifests,
  old: ManifestsStatus | undefined,
  ready: Omit<Condition, "lastTransitionTime">,
  applied: AppliedObject[],
  target: ManifestsTarget,
  formerTargets: FormerTarget[],
  pruneLeft?: AppliedObject[],
): Promise<void> {
  const status = nextStatus(old, cr.metadata?.generation, ready, applied, target, formerTargets, undefined, pruneLeft);
  if (!status) return;
  try {
    wrote(
      cr,
      await K8s(Manifests).PatchStatus({ metadata: { name: cr.metadata!.name, namespace: cr.metadata!.namespace }, status: status as ManifestsStatus }),
    );
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  if (readyChanged(old, ready)) await emitEvent(cr, ready.status === "True" ? "Normal" : "Warning", ready.reason, ready.message);
}

/** Writes the write-ahead record; nothing is applied unless it was written. Returns the status after it. */
async function writeAheadRecord(cr: Manifests, ahead: ReturnType<typeof aheadStatus>): Promise<ManifestsStatus> {
  const answer = await K8s(Manifests).PatchStatus({
    metadata: { name: cr.metadata!.name, namespace: cr.metadata!.namespace },
    status: ahead.patch as ManifestsStatus,
  });
  wrote(cr, answer);
  return ahead.status;
}

/** A CR being deleted: delete everything it applied, in its target and any former one, unless annotated to orphan. */
async function finalizeManifests(cr: Manifests): Promise<void> {
  const key = `${cr.metadata!.namespace}/${cr.metadata!.name}`;
  clearRetry(key);
  written.delete(key);
  reconciled.delete(key);
  const targets = deletionTargets(cr.status, targetOf(cr.spec!));
  if (targets.length === 0) return;
  if (keepsRemoteObjects(cr.metadata?.annotations)) {
    Log.info({ key, objects: targets.flatMap((t) => t.applied).length }, "Manifests deleted with orphan annotation: remote objects kept");
    return;
  }
  for (const target of targets) {
    let outcome: Deletion;
    try {
      outcome = await deleteFromTarget(cr, target, target.applied);
    } catch (err) {
      outcome = { deleted: [], left: target.applied, problem: apiMessage(err), refused: false };
    }
    if (outcome.left.length === 0) continue;
    // never block deletion forever: say loudly what was left behind, and where
    await emitEvent(cr, "Warning", "RemoteObjectsOrphaned", orphanedMessage(outcome.left, target, outcome.problem));
    Log.warn({ key, problem: outcome.problem, target: describeTarget(target) }, "remote objects orphaned");
  }
}

function scheduleRetry(key: string): void {
  const prev = retries.get(key);
  if (prev) clearTimeout(prev.timer);
  const delay = nextRetryDelay(prev?.delay);
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
    // a resync still under way (a slow remote) is not started again over itself
    if (resyncing) return;
    resyncing = true;
    try {
      const list = await K8s(Manifests).Get();
      index.replace(list.items, list.metadata?.resourceVersion);
      const snapshot = new RemoteSnapshot((client, apiVersion, kind, namespace) => listRemote(client, apiVersion, kind, namespace, SNAPSHOT_LIST_LIMIT));
      // one CR's failure must not keep the others from their resync
      await Promise.all(list.items.map((cr) => reconcileManifests(cr, snapshot).catch((err) => reconcileFailed(cr, err))));
    } catch (err) {
      Log.warn({ err: apiMessage(err) }, "manifests resync failed");
    } finally {
      resyncing = false;
    }
  }, RESYNC_MS);
  resync.unref();
}

async function addFinalizer(cr: Manifests): Promise<void> {
  const patch = cr.metadata?.finalizers
    ? { op: "add" as const, path: "/metadata/finalizers/-", value: PEPR_FINALIZER }
    : { op: "add" as const, path: "/metadata/finalizers", value: [PEPR_FINALIZER] };
  wrote(cr, await K8s(Manifests, { name: cr.metadata!.name, namespace: cr.metadata!.namespace }).Patch([patch]));
}

async function releaseFinalizer(cr: Manifests): Promise<void> {
  const finalizers = (cr.metadata?.finalizers ?? []).filter((f) => f !== PEPR_FINALIZER);
  try {
    await K8s(Manifests, { name: cr.metadata!.name, namespace: cr.metadata!.namespace }).Patch([
      { op: "replace", path: "/metadata/finalizers", value: finalizers },
    ]);
    written.delete(`${cr.metadata!.namespace}/${cr.metadata!.name}`);
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  index.forget(cr);
  const now = Date.now();
  for (const [uid, at] of released) if (now - at > RELEASED_KEEP_MS) released.delete(uid);
  if (cr.metadata?.uid) released.set(cr.metadata.uid, now);
}

/**
 * Why this CR must not apply `obj`, or undefined: an existing remote object is applied only if
 * it is ours (lib/remote/manifests.ts claimOf), or was left by a Manifests that no longer exists.
 */
async function refuseClaim(cr: Manifests, recordedByMe: boolean, obj: RemoteObject, existing: KubernetesObject | undefined): Promise<string | undefined> {
  const what = `${obj.kind} ${obj.metadata.namespace ? obj.metadata.namespace + "/" : ""}${obj.metadata.name}`;
  const claim = claimOf(existing, ownerId(cr), recordedByMe, what);
  if (claim.mine) return undefined;
  if (claim.otherCr && !(await manifestsAlive(claim.otherCr))) return undefined;
  return claim.message;
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

/** Objects that other live Manifests for the same serviceUUID declare: never ours to delete. */
async function declaredByOthers(cr: Manifests, serviceUUID: string): Promise<Set<string>> {
  if (!index.complete) {
    const all = await K8s(Manifests).Get();
    index.replace(all.items, all.metadata?.resourceVersion);
  }
  return index.declaredByOthers(cr, serviceUUID);
}

/** Deletes a recorded object unless another CR claims or declares it; true if deleted. */
async function deleteIfOurs(client: KubernetesObjectApi, cr: Manifests, a: AppliedObject, othersDeclare: Set<string>): Promise<boolean> {
  const existing = await readRemote(client, refOf(a));
  if (!existing) return false;
  const left = leaveReason(deleteClaim(existing, ownerId(cr), a), declaredBy(othersDeclare, a), a);
  if (left) {
    await emitEvent(cr, "Normal", "LeftForOtherOwner", left);
    return false;
  }
  await deleteRemote(client, a, existing.metadata?.uid);
  return true;
}
