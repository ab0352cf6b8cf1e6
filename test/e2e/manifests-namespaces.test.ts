// Corners of the Manifests controller between two real API servers (set up like
// test/e2e/manifests.test.ts: the module on the control cluster, `entangle agent api-proxy` for
// the managed one, a relay that holds no token):
// - a record names its namespace: one applied in default never vouches for a user's object of
//   the same kind and name in another namespace (lib/remote/manifests.ts sameObject);
// - a cluster-scoped object has none, whatever its YAML says (placed);
// - an object removed from the spec that the remote refuses (403) to delete is retried
//   MAX_REFUSALS times, then left with the Pruned condition and one DeleteRefused Event.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { seedObject } from "../helpers/seed.ts";
import { getJson, kc, kubectl, moduleDown, moduleUp, run, until } from "../helpers/k8s.ts";
import { runEntangle, killAll, type AgentProcess } from "../helpers/agents.ts";
import { managedClusterAndRelay } from "../helpers/managed.ts";

type Any = Record<string, any>;
const CONTROL = process.env.ENTANGLE_TEST_CLUSTER || "test";
const MANAGED = `${CONTROL}-managed`;
const MF = "manifests.entangle-proxy.kairos.io";
const token = newToken();
let control = "";
let managed = "";
let relayAddr = "";
const proxies: AgentProcess[] = [];

const ready = (o: Any) => o.status?.conditions?.find((c: Any) => c.type === "Ready");
const condition = (o: Any, type: string) => o.status?.conditions?.find((c: Any) => c.type === type);
const manifests = (name: string, service: string, entries: string[]) =>
  JSON.stringify({
    apiVersion: "entangle-proxy.kairos.io/v1alpha1",
    kind: "Manifests",
    metadata: { name, namespace: "default" },
    spec: { serviceUUID: service, secretRef: "mysecret", manifests: entries },
  });
const configMap = (name: string, namespace: string, value = "ours") =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${namespace}}\ndata: {value: "${value}"}\n`;

async function startApiProxy(service: string, extra: string[] = []): Promise<void> {
  const p = runEntangle(["agent", "api-proxy", "--service", service, ...extra, "--kubeconfig", managed, "--p2p-listen", "127.0.0.1:0", "--peer", relayAddr], {
    ENTANGLE_NETWORK_TOKEN: token,
  });
  proxies.push(p);
  await p.waitMsg("agent started", 60_000);
}

const crStatus = (name: string): Promise<Any> => getJson(control, [MF, name, "-n", "default"]);

/** The CR once its status is for its current generation (Ready included). */
const settled = (name: string, what: string) =>
  until(
    what,
    async () => {
      const o = await crStatus(name);
      return o.status?.observedGeneration === o.metadata.generation && ready(o)?.observedGeneration === o.metadata.generation && o;
    },
    60_000,
  );

async function eventsOf(uid: string, reason: string): Promise<Any[]> {
  return (await getJson(control, ["events", "-n", "default", "--field-selector", `involvedObject.uid=${uid},reason=${reason}`])).items;
}

const managedHas = async (name: string, namespace: string) => (await kubectl(managed, ["get", "configmap", name, "-n", namespace])).code === 0;

beforeAll(async () => {
  control = inject("kubeconfig");
  ({ managed, relayAddr } = await managedClusterAndRelay(CONTROL));
  await moduleDown(CONTROL);
  await moduleUp(CONTROL, { ENTANGLE_PEERS: relayAddr, ENTANGLE_RESYNC_SECONDS: "3", ENTANGLE_P2P_LISTEN: "127.0.0.1:0" });
  await startApiProxy("foo");
  await until("no Manifests left from an earlier run", async () => (await getJson(control, [MF, "-n", "default"])).items.length === 0, 120_000);
  await kc(control, ["apply", "-f", "-"], JSON.stringify(seedObject("control-manifests", "Secret")).replace("YOUR_NETWORK_TOKEN_GOES_HERE", token));
}, 600_000);

afterAll(async () => {
  await kubectl(control, ["delete", MF, "--all", "-n", "default", "--wait=false"]);
  await moduleDown(CONTROL);
  await killAll();
  if (process.env.ENTANGLE_KEEP_CLUSTER !== "1") await run("bash", ["hack/cluster.sh", "down", MANAGED]);
});

describe("Manifests: namespaces and refused prunes", { timeout: 180_000 }, () => {
  it("a record in one namespace never vouches for the same kind and name in another: a user's twin is neither taken over nor deleted", async () => {
    await kubectl(managed, ["delete", "namespace", "twin-b", "--wait=true"]);
    await kc(managed, ["create", "namespace", "twin-b"]);
    await kc(managed, ["create", "configmap", "twin", "-n", "twin-b", "--from-literal=value=users"]);
    await kc(control, ["apply", "-f", "-"], manifests("twins", "foo", [configMap("twin", "default")]));
    expect(ready(await settled("twins", "twins applied in default"))?.status).toBe("True");
    // the spec now also names the user's twin: our record of default/twin must not make it ours
    await kc(control, ["apply", "-f", "-"], manifests("twins", "foo", [configMap("twin", "default"), configMap("twin", "twin-b")]));
    const cr = await settled("twins", "twins at generation 2");
    expect(ready(cr)).toMatchObject({ status: "False", reason: "OwnershipConflict" });
    expect(cr.status.applied.map((a: Any) => [a.namespace, a.name, a.state, a.appliedBefore])).toEqual([
      ["default", "twin", "Applied", undefined],
      ["twin-b", "twin", "Failed", undefined],
    ]);
    await new Promise((r) => setTimeout(r, 4_000)); // a resync: still left alone
    const theirs = await getJson(managed, ["configmap", "twin", "-n", "twin-b"]);
    expect(theirs.data).toEqual({ value: "users" });
    expect(theirs.metadata.annotations?.["entangle-proxy.kairos.io/owner"]).toBeUndefined();
    // deleting the CR deletes its own twin, not the user's
    await kc(control, ["delete", MF, "twins", "-n", "default", "--timeout=60s"]);
    await until("default/twin deleted with the CR", async () => !(await managedHas("twin", "default")), 30_000);
    expect((await getJson(managed, ["configmap", "twin", "-n", "twin-b"])).data).toEqual({ value: "users" });
    await kc(managed, ["delete", "namespace", "twin-b", "--wait=false"]);
  });

  it("a cluster-scoped object whose YAML names a namespace (the API server drops it) is applied once and stays: not pruned after its apply", async () => {
    const role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: entangle-scoped, namespace: elsewhere}\nrules: []\n";
    await kc(control, ["apply", "-f", "-"], manifests("scoped", "foo", [role]));
    const cr = await settled("scoped", "scoped applied");
    expect(ready(cr)?.status).toBe("True");
    expect(cr.status.applied).toEqual([
      { index: 0, apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "entangle-scoped", state: "Applied" },
    ]);
    const first = await until("ClusterRole applied", () => getJson(managed, ["clusterrole", "entangle-scoped"]));
    await new Promise((r) => setTimeout(r, 7_000)); // two resyncs
    expect((await getJson(managed, ["clusterrole", "entangle-scoped"])).metadata.uid).toBe(first.metadata.uid);
    expect(await eventsOf(cr.metadata.uid, "Pruned")).toEqual([]);
    await kc(control, ["delete", MF, "scoped", "-n", "default", "--timeout=60s"]);
    await until("ClusterRole deleted with the CR", async () => (await kubectl(managed, ["get", "clusterrole", "entangle-scoped"])).code !== 0, 30_000);
  });

  it("an object removed from the spec that the remote refuses (403) to delete: given up after 5 attempts, with the Pruned condition and one Event; Ready stays True", async () => {
    // foo-p impersonates entangle-p, who may do everything with ConfigMaps of prune-p but delete them
    await kubectl(managed, ["delete", "namespace", "prune-p", "--wait=true"]);
    await kc(managed, ["create", "namespace", "prune-p"]);
    await kc(managed, ["create", "role", "entangle-p", "--verb=get,list,watch,create,update,patch", "--resource=configmaps", "-n", "prune-p"]);
    await kc(managed, ["create", "rolebinding", "entangle-p", "--role=entangle-p", "--user=entangle-p", "-n", "prune-p"]);
    await startApiProxy("foo-p", ["--as", "entangle-p"]);
    await kc(control, ["apply", "-f", "-"], manifests("prunes", "foo-p", [configMap("kept-p", "prune-p"), configMap("gone-p", "prune-p")]));
    expect(ready(await settled("prunes", "prunes applied through foo-p"))?.status).toBe("True");
    await kc(control, ["apply", "-f", "-"], manifests("prunes", "foo-p", [configMap("kept-p", "prune-p")]));
    const stopped = await until(
      "Pruned=False, DeleteRefused",
      async () => {
        const o = await crStatus("prunes");
        return condition(o, "Pruned")?.reason === "DeleteRefused" && o;
      },
      90_000,
    );
    expect(condition(stopped, "Pruned")).toMatchObject({
      status: "False",
      message: expect.stringMatching(
        /^ConfigMap prune-p\/gone-p: could not delete: .*forbidden.*; refused 5 times in a row, no longer retried; removed from spec.manifests but left in the remote cluster \(grant get and delete/,
      ),
    });
    expect(ready(stopped)).toMatchObject({ status: "True", reason: "Applied" });
    expect(stopped.status.executed).toBe(true);
    expect(stopped.status.applied.map((a: Any) => [a.name, a.state, a.refusals])).toEqual([
      ["kept-p", "Applied", undefined],
      ["gone-p", "Applied", 5],
    ]);
    const uid = stopped.metadata.uid;
    const refused = await until("DeleteRefused event", async () => (await eventsOf(uid, "DeleteRefused")).length > 0 && eventsOf(uid, "DeleteRefused"));
    expect(refused[0]).toMatchObject({
      type: "Warning",
      message: expect.stringMatching(/^ConfigMap prune-p\/gone-p removed from spec.manifests but left in service foo-p .*forbidden.*refused 5 times in a row/),
    });
    // no more attempts: two resyncs later, the same single Event and refusal count
    await new Promise((r) => setTimeout(r, 7_000));
    expect((await eventsOf(uid, "DeleteRefused")).map((e) => e.count ?? 1)).toEqual([1]);
    expect((await crStatus("prunes")).status.applied[1].refusals).toBe(5);
    expect(await managedHas("gone-p", "prune-p")).toBe(true);
    // delete granted and the spec changed: tried again, deleted, Pruned=True
    await kc(managed, ["create", "role", "entangle-p-delete", "--verb=delete", "--resource=configmaps", "-n", "prune-p"]);
    await kc(managed, ["create", "rolebinding", "entangle-p-delete", "--role=entangle-p-delete", "--user=entangle-p", "-n", "prune-p"]);
    await kc(control, ["apply", "-f", "-"], manifests("prunes", "foo-p", [configMap("kept-p", "prune-p", "again")]));
    await until("gone-p pruned", async () => !(await managedHas("gone-p", "prune-p")), 60_000);
    const cleared = await until("Pruned=True", async () => {
      const o = await crStatus("prunes");
      return condition(o, "Pruned")?.status === "True" && o;
    });
    expect(condition(cleared, "Pruned")).toMatchObject({ reason: "Deleted" });
    expect(cleared.status.applied.map((a: Any) => a.name)).toEqual(["kept-p"]);
    await kc(control, ["delete", MF, "prunes", "-n", "default", "--timeout=60s"]);
    await until("kept-p deleted with the CR", async () => !(await managedHas("kept-p", "prune-p")), 30_000);
    await kc(managed, ["delete", "namespace", "prune-p", "--wait=false"]);
  });
});
