// Informer-style caches for the Entanglement controller (issue 11): what the watches the
// capability already has delivered (the CRs, the managed Deployments and Pods, every Service and
// Secret), so that a reconcile of an unchanged Entanglement makes no API request. Pure data
// structures: the reconciler (lib/controller/entanglement.ts) feeds them from watch events and
// from its own requests' answers, and reads the API only for what they have never seen.

/** The resourceVersion-carrying part of any Kubernetes object. */
interface Versioned {
  metadata?: { resourceVersion?: string; managedFields?: unknown };
}

/**
 * `obj` without metadata.managedFields (a copy; the watch's object is left alone): the API
 * server's field ownership records, which nothing here reads, are a third to a half of a cached
 * Deployment, Service or Entanglement.
 */
export function withoutManagedFields<T extends Versioned>(obj: T): T {
  if (obj.metadata?.managedFields === undefined) return obj;
  const { managedFields: _dropped, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/**
 * Whether `incoming` may replace `cached`: not when both resourceVersions are integers (etcd
 * revisions, as every API server serves them) and `incoming`'s is lower, i.e. a watch event
 * older than the answer to our own write.
 */
export function notOlder(incoming: Versioned, cached: Versioned | undefined): boolean {
  const a = incoming.metadata?.resourceVersion;
  const b = cached?.metadata?.resourceVersion;
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) >= BigInt(b);
}

/**
 * Whether a copy of an object (a watch event, a list item) may stand for the current one, given
 * the resourceVersion our own last write to it answered: it must be a whole object (a version and
 * a spec; a retry by name has neither) and not older than that write.
 */
export function usableCopy(copy: Versioned & { spec?: unknown }, lastWritten: string | undefined): boolean {
  if (copy.metadata?.resourceVersion === undefined || copy.spec === undefined) return false;
  return lastWritten === undefined || notOlder(copy, { metadata: { resourceVersion: lastWritten } });
}

/**
 * Objects by "namespace/name". An entry is either an object or `null`, known absent (only for a
 * kind whose watch sees every object of that name, so that its creation would reach us); no
 * entry means never seen: ask the API.
 */
export class ObjectCache<T extends Versioned> {
  readonly #entries = new Map<string, T | null>();

  known(key: string): boolean {
    return this.#entries.has(key);
  }

  /** The object, or undefined when absent or unknown (see known()). */
  get(key: string): T | undefined {
    return this.#entries.get(key) ?? undefined;
  }

  /** A watch event or a write's answer: the current object, unless we hold a newer one. */
  observe(key: string, obj: T): void {
    const cached = this.#entries.get(key);
    if (notOlder(obj, cached ?? undefined)) this.#entries.set(key, withoutManagedFields(obj));
  }

  /** The answer to a read: kept only when no watch event came meanwhile (that one is newer). */
  fill(key: string, obj: T | null): void {
    if (!this.#entries.has(key)) this.#entries.set(key, obj && withoutManagedFields(obj));
  }

  /** Deleted, and we will hear of its re-creation: known absent. */
  absent(key: string): void {
    this.#entries.set(key, null);
  }

  /** Deleted, or no longer ours to follow: unknown again. */
  forget(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** One request at a time per key: concurrent reconciles missing the same entry share one read. */
export class InFlight {
  readonly #running = new Map<string, Promise<unknown>>();

  run<T>(key: string, read: () => Promise<T>): Promise<T> {
    const running = this.#running.get(key);
    if (running) return running as Promise<T>;
    const next = read().finally(() => this.#running.delete(key));
    this.#running.set(key, next);
    return next;
  }
}

/** What the controller keeps of an agent pod: enough for agentFailure(), nothing else. */
export interface PodRecord {
  metadata: { name?: string; creationTimestamp?: string | Date; deletionTimestamp?: string | Date };
  status?: { containerStatuses?: { name: string }[] };
}

/**
 * The agent pods of each Entanglement (by namespace and ENTANGLEMENT_LABEL value), from the
 * managed Pod watch. A namespace is complete once listed: before that, a pod the watch has not
 * delivered yet (the watch starts in no particular order after a module restart) may exist.
 */
export class AgentPods {
  /** namespace -> instance -> pod name -> record */
  readonly #pods = new Map<string, Map<string, Map<string, PodRecord>>>();
  readonly #listed = new Set<string>();

  /** A pod seen (watch event or list): replaces what was kept of it. */
  observe(namespace: string, instance: string, pod: PodRecord & Versioned): void {
    const name = pod.metadata.name ?? "";
    let byInstance = this.#pods.get(namespace);
    if (!byInstance) this.#pods.set(namespace, (byInstance = new Map()));
    let pods = byInstance.get(instance);
    if (!pods) byInstance.set(instance, (pods = new Map()));
    const kept = pods.get(name) as (PodRecord & Versioned) | undefined;
    if (notOlder(pod, kept)) pods.set(name, slim(pod));
  }

  gone(namespace: string, instance: string, name: string): void {
    const byInstance = this.#pods.get(namespace);
    const pods = byInstance?.get(instance);
    if (!pods) return;
    pods.delete(name);
    if (pods.size === 0) byInstance!.delete(instance);
    if (byInstance!.size === 0) this.#pods.delete(namespace);
  }

  /** A list of the namespace's managed pods answered: from now on the watch keeps it complete. */
  listed(namespace: string, pods: { instance: string; pod: PodRecord & Versioned }[]): void {
    for (const { instance, pod } of pods) {
      // a pod the watch delivered meanwhile is as new as the list's, or newer
      const kept = this.#pods
        .get(namespace)
        ?.get(instance)
        ?.get(pod.metadata.name ?? "");
      if (!kept) this.observe(namespace, instance, pod);
    }
    this.#listed.add(namespace);
  }

  complete(namespace: string): boolean {
    return this.#listed.has(namespace);
  }

  /** The pods kept of one Entanglement's agent. */
  of(namespace: string, instance: string): PodRecord[] {
    return [...(this.#pods.get(namespace)?.get(instance)?.values() ?? [])];
  }
}

function slim(pod: PodRecord & Versioned): PodRecord & Versioned {
  const { name, creationTimestamp, deletionTimestamp, resourceVersion } = pod.metadata as PodRecord["metadata"] & { resourceVersion?: string };
  return {
    metadata: { name, creationTimestamp, deletionTimestamp, resourceVersion } as PodRecord["metadata"],
    status: { containerStatuses: pod.status?.containerStatuses },
  };
}

/**
 * Which namespaces' Services are all known. The Service watch sees every Service of the cluster,
 * so a namespace listed once that watch is running (it delivered an event: its own initial list
 * is done, so our list is not older than its start) stays complete: a name not cached there is
 * absent, with no read. A namespace is followed from the moment its list is asked for, so that a
 * deletion the watch reports meanwhile is kept as such (not undone by the list's answer).
 */
export class ListedNamespaces {
  readonly #following = new Set<string>();
  readonly #complete = new Set<string>();
  #watching = false;

  /** The watch delivered an event. */
  watching(): void {
    this.#watching = true;
  }

  /** Whether a list now would make a namespace complete. */
  canList(): boolean {
    return this.#watching;
  }

  listing(namespace: string): void {
    this.#following.add(namespace);
  }

  listed(namespace: string): void {
    this.#complete.add(namespace);
  }

  /** The list failed: unknown again. */
  failed(namespace: string): void {
    if (!this.#complete.has(namespace)) this.#following.delete(namespace);
  }

  /** Whether every event of this namespace must be kept (listing or listed). */
  follows(namespace: string): boolean {
    return this.#following.has(namespace);
  }

  complete(namespace: string): boolean {
    return this.#complete.has(namespace);
  }
}
