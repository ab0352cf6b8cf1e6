// The remote cluster's API, as the Manifests controller uses it: a Kubernetes client whose "API
// server" is a local tunnel port, every request aborted after REQUEST_TIMEOUT_MS, and the
// writes it makes (server-side apply with the create/update fallback, create-only, delete of
// exactly the object read).
import { Agent as HttpAgent } from "node:http";
import {
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  createConfiguration,
  type KubernetesObject,
  type Middleware,
  type SecurityAuthentication,
} from "@kubernetes/client-node";
import type { AppliedObject } from "../crds/index.ts";
import type { RemoteObject } from "./manifests.ts";
import { fallbackWrite, forbidden, refusedMessage, unreadableMessage } from "./fallback.ts";
import { remoteMessage } from "./outcome.ts";
import { notFound } from "../k8s/api.ts";

export const FIELD_MANAGER = "entangle-proxy";
export const REQUEST_TIMEOUT_MS = 15_000;
const IDLE_SOCKET_MS = 60_000;

/**
 * A client of the API server at http://127.0.0.1:`port`. Each request carries its own abort
 * signal: one the remote never answers is cut after `timeoutMs` (its socket closed), not left
 * pending behind a timer that only stopped waiting for it.
 */
export function kubeClient(port: number, timeoutMs = REQUEST_TIMEOUT_MS): KubernetesObjectApi {
  // One keep-alive agent per client: the client's default builds an http.Agent per request, so
  // every request was a new TCP connection, tunnel stream and upstream connection (a TLS handshake
  // at the api-proxy). Idle sockets close after IDLE_SOCKET_MS, and with the tunnel's listener.
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 16, timeout: IDLE_SOCKET_MS });
  const viaTunnel: SecurityAuthentication = { getName: () => "entangle tunnel", applySecurityAuthentication: (ctx) => ctx.setAgent(agent) };
  const abortAfter: Middleware = {
    pre: async (ctx) => (ctx.setSignal(AbortSignal.timeout(timeoutMs)), ctx),
    post: async (rsp) => rsp,
  };
  const config = createConfiguration({
    baseServer: new ServerConfiguration(`http://127.0.0.1:${port}`, {}),
    authMethods: { default: viaTunnel },
    promiseMiddleware: [abortAfter],
  });
  const client = new KubernetesObjectApi(config);
  timeouts.set(client, timeoutMs);
  return client;
}

const timeouts = new WeakMap<KubernetesObjectApi, number>();

/** `p`, with the client's abort (our timeout) said as such: "<what>: remote API did not answer within N s". */
async function answer<T>(client: KubernetesObjectApi, p: Promise<T>, what: string): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const name = (err as { name?: unknown } | undefined)?.name;
    if (name !== "AbortError" && name !== "TimeoutError") throw err;
    const seconds = (timeouts.get(client) ?? REQUEST_TIMEOUT_MS) / 1000;
    throw Object.assign(new Error(`${what}: remote API did not answer within ${seconds} s`), { code: "ETIMEDOUT" });
  }
}

// KubernetesObjectApi.resource is protected but is exactly the client's own cached lookup
type KindLookup = { resource(apiVersion: string, kind: string): Promise<unknown> };

/**
 * Why the remote cluster cannot take this kind, or undefined if it can. The client resolves the
 * kind before each request; left to it, an unknown group/version reads "404 page not found" and
 * an unknown kind in a known one looked like a lost connection (an Error without a code).
 * Answers are cached by the client: no extra request once a group/version is known.
 */
export async function missingKind(client: KubernetesObjectApi, obj: RemoteObject): Promise<string | undefined> {
  try {
    const resource = await answer(client, (client as unknown as KindLookup).resource(obj.apiVersion, obj.kind), `look up ${obj.kind}`);
    return resource ? undefined : `the remote cluster has no kind ${obj.kind} in ${obj.apiVersion}`;
  } catch (err) {
    if (notFound(err)) return `the remote cluster does not serve ${obj.apiVersion} (kind ${obj.kind}): is its CRD installed?`;
    throw err;
  }
}

/**
 * Whether the remote serves `obj`'s kind per namespace, or undefined if it does not serve it
 * (missingKind says why). Cached by the client like missingKind's look-up, which it precedes.
 */
export async function namespacedKind(client: KubernetesObjectApi, obj: RemoteObject): Promise<boolean | undefined> {
  try {
    const resource = await answer(client, (client as unknown as KindLookup).resource(obj.apiVersion, obj.kind), `look up ${obj.kind}`);
    return (resource as { namespaced?: boolean } | undefined)?.namespaced;
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/** What the Kubernetes client needs to address an object we recorded in status. */
export function refOf(a: AppliedObject): KubernetesObject {
  return { apiVersion: a.apiVersion, kind: a.kind, metadata: { name: a.name, namespace: a.namespace } };
}

/** The remote object, or undefined if there is none. */
export async function readRemote(client: KubernetesObjectApi, target: KubernetesObject): Promise<KubernetesObject | undefined> {
  try {
    return await answer(client, client.read(target as KubernetesObject & { metadata: { name: string } }), `read ${target.kind} ${target.metadata?.name}`);
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/** Up to `limit` objects of a kind (in a namespace, if given): one page, no continuation. */
export async function listRemote(
  client: KubernetesObjectApi,
  apiVersion: string,
  kind: string,
  namespace: string | undefined,
  limit: number,
): Promise<KubernetesObject[]> {
  const list = await answer(client, client.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, undefined, limit), `list ${kind}`);
  return list.items;
}

/**
 * Server-side apply; where the remote refuses it (403: the seed's ClusterRole grants create and
 * update but not patch), create or update instead, as `kubectl apply` would.
 */
export async function applyObject(client: KubernetesObjectApi, desired: RemoteObject, existing: KubernetesObject | undefined): Promise<KubernetesObject> {
  const what = `${desired.kind} ${desired.metadata.name}`;
  try {
    return await answer(
      client,
      client.patch(desired as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply),
      `apply ${what}`,
    );
  } catch (err) {
    if (!forbidden(err)) throw err;
    const write = fallbackWrite(desired, existing as Record<string, unknown> | undefined);
    if (write.verb === "none") return existing!;
    try {
      const body = write.body as KubernetesObject;
      return await answer(
        client,
        write.verb === "create" ? client.create(body, undefined, undefined, FIELD_MANAGER) : client.replace(body, undefined, undefined, FIELD_MANAGER),
        `${write.verb} ${what}`,
      );
    } catch (err2) {
      if (!forbidden(err2)) throw err2;
      const message = refusedMessage(desired.kind, remoteMessage(err), write.verb, remoteMessage(err2));
      throw Object.assign(new Error(message), { code: 403, body: { message } });
    }
  }
}

/** An object we may not read: only a create is safe (refused if it exists, whoever made it). */
export async function createUnread(client: KubernetesObjectApi, desired: RemoteObject, readRefusal: string): Promise<KubernetesObject> {
  try {
    return await answer(
      client,
      client.create(desired as KubernetesObject, undefined, undefined, FIELD_MANAGER),
      `create ${desired.kind} ${desired.metadata.name}`,
    );
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code !== 403 && code !== 409) throw err;
    const message = unreadableMessage(desired.kind, readRefusal, remoteMessage(err), code === 409);
    throw Object.assign(new Error(message), { code, body: { message } });
  }
}

/** Deletes exactly the object we looked at (its uid), not one recreated meanwhile by someone else. */
export async function deleteRemote(client: KubernetesObjectApi, a: AppliedObject, uid: string | undefined): Promise<void> {
  await answer(
    client,
    client.delete(refOf(a), undefined, undefined, undefined, undefined, undefined, { preconditions: { uid } }),
    `delete ${a.kind} ${a.name}`,
  );
}
