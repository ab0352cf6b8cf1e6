// What the Entanglement controller remembers between watch events, so that the events of its
// agents' Deployments and Pods, and of Secrets and Services, cost no API request unless they can
// change an Entanglement's status or objects. Without it, every Pod or Secret event listed all
// Entanglements of its namespace and every Deployment status update ran a full reconcile: at a
// thousand Entanglements in one namespace, quadratic work.
//
// Only what was seen is remembered: an Entanglement not seen yet is reconciled when its own
// watch event arrives, which reads everything fresh. Nothing here is ever a reason to write.

/** The fields of an Entanglement that link it to other objects. */
export interface Links {
  secretRef?: string;
  serviceRef?: string;
  /** its agents' ENTANGLEMENT_LABEL value (objectName("", name)) */
  instance: string;
}

/** What the last reconcile of an Entanglement read and wrote. */
export interface Outcome {
  /** metadata.generation of the agent Deployment, and what its status said */
  deploymentGeneration?: number;
  readyReplicas: number;
  available: boolean;
  /** whether one of the agent's pods had failed */
  failed: boolean;
  /** metadata.resourceVersion of the Entanglement after our status write (or as read, when none was needed) */
  resourceVersion?: string;
}

/** The parts of a Deployment's watch event compared with the last outcome. */
export interface DeploymentView {
  generation?: number;
  readyReplicas: number;
  available: boolean;
}

export function deploymentView(dep: {
  metadata?: { generation?: number };
  status?: { readyReplicas?: number; conditions?: { type: string; status: string }[] };
}): DeploymentView {
  return {
    generation: dep.metadata?.generation,
    readyReplicas: dep.status?.readyReplicas ?? 0,
    available: dep.status?.conditions?.find((c) => c.type === "Available")?.status === "True",
  };
}

/**
 * Whether a Deployment event can change the owner's status or objects: its spec changed (a new
 * generation: edited by someone, to be restored) or its availability did.
 */
export function deploymentMatters(last: Outcome | undefined, dep: DeploymentView): boolean {
  return last === undefined || last.deploymentGeneration !== dep.generation || last.readyReplicas !== dep.readyReplicas || last.available !== dep.available;
}

/** Whether a Pod event can change the owner's status: this pod failed, or a failure was reported before (it may be over). */
export function podMatters(last: Outcome | undefined, podFailed: boolean): boolean {
  return last === undefined || podFailed || last.failed;
}

/** Whether a watch event of the Entanglement is the echo of our own last write (or of the state our last reconcile saw). */
export function isEcho(last: Outcome | undefined, resourceVersion: string | undefined): boolean {
  return last?.resourceVersion !== undefined && last.resourceVersion === resourceVersion;
}

/**
 * Whether an event is a new Entanglement or a new spec (a bulk apply's burst is made of these),
 * and not a status write: ours, whose echo may come before we know it is ours, must not keep a
 * burst going. `generationBefore`: the last generation seen of it.
 */
export function newSpec(event: { metadata?: { resourceVersion?: string; generation?: number } }, generationBefore: number | undefined): boolean {
  return event.metadata?.resourceVersion !== undefined && event.metadata.generation !== generationBefore;
}

export class ControllerMemory {
  readonly #links = new Map<string, Links>();
  readonly #outcomes = new Map<string, Outcome>();

  static key(namespace: string, name: string): string {
    return `${namespace}/${name}`;
  }

  note(namespace: string, name: string, links: Links): void {
    this.#links.set(ControllerMemory.key(namespace, name), links);
  }

  /** The Entanglement is gone: nothing of it is kept. */
  forget(namespace: string, name: string): void {
    const key = ControllerMemory.key(namespace, name);
    this.#links.delete(key);
    this.#outcomes.delete(key);
  }

  record(namespace: string, name: string, outcome: Outcome): void {
    this.#outcomes.set(ControllerMemory.key(namespace, name), outcome);
  }

  /** The outcome is no longer true (a reconcile failed half-way): the next event reconciles. */
  unrecord(namespace: string, name: string): void {
    this.#outcomes.delete(ControllerMemory.key(namespace, name));
  }

  outcome(namespace: string, name: string): Outcome | undefined {
    return this.#outcomes.get(ControllerMemory.key(namespace, name));
  }

  /** Names of the Entanglements seen in `namespace` whose links satisfy `uses`. */
  users(namespace: string, uses: (links: Links) => boolean): string[] {
    const prefix = `${namespace}/`;
    const names: string[] = [];
    for (const [key, links] of this.#links) if (key.startsWith(prefix) && uses(links)) names.push(key.slice(prefix.length));
    return names;
  }

  /** Names of the Entanglements seen in `namespace` whose agents carry this instance label. */
  owners(namespace: string, instance: string): string[] {
    return this.users(namespace, (l) => l.instance === instance);
  }

  get size(): number {
    return this.#links.size;
  }
}
