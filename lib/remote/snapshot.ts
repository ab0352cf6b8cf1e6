// What one resync saw in the remote clusters: a list per client, kind and namespace, made
// once and shared by every CR of that resync (issue 11: the drift check read each object with
// its own GET every 30 s, 1,000 reads per resync for 200 Manifests of 5 objects). Used only to
// skip objects that are ours and unchanged; anything else is read again before a write.
import type { KubernetesObject, KubernetesObjectApi } from "@kubernetes/client-node";
import type { AppliedObject } from "../crds/index.ts";

/** Objects listed per kind and namespace at most; a bigger list is paged no further (the rest is read one by one). */
export const SNAPSHOT_LIST_LIMIT = 2000;

type ListRemote = (client: KubernetesObjectApi, apiVersion: string, kind: string, namespace: string | undefined) => Promise<KubernetesObject[]>;
type Listed = Map<string, KubernetesObject> | undefined;

export class RemoteSnapshot {
  private readonly lists = new WeakMap<KubernetesObjectApi, Map<string, Promise<Listed>>>();
  private readonly list: ListRemote;

  constructor(list: ListRemote) {
    this.list = list;
  }

  /**
   * The object as this resync's list of its kind and namespace saw it, or undefined when the list
   * does not have it or could not be made (no list permission, the kind is gone): read it then.
   */
  async find(client: KubernetesObjectApi, ref: AppliedObject): Promise<KubernetesObject | undefined> {
    if (!ref.apiVersion || !ref.kind || !ref.name) return undefined;
    let byKey = this.lists.get(client);
    if (!byKey) this.lists.set(client, (byKey = new Map()));
    const key = `${ref.apiVersion}/${ref.kind}/${ref.namespace ?? ""}`;
    let listed = byKey.get(key);
    if (!listed) {
      // (a list's items come without apiVersion and kind)
      listed = this.list(client, ref.apiVersion, ref.kind, ref.namespace).then(
        (items) => new Map(items.map((o) => [`${o.metadata?.namespace ?? ""}/${o.metadata?.name}`, { ...o, apiVersion: ref.apiVersion, kind: ref.kind }])),
        () => undefined,
      );
      byKey.set(key, listed);
    }
    return (await listed)?.get(`${ref.namespace ?? ""}/${ref.name}`);
  }
}
