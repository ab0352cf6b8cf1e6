// Remote manifests between two real API servers: the control cluster ("test", with the module)
// applies Manifests to a managed cluster whose API is served on the network by
// `entangle agent api-proxy` (the process its pod would run); both meet through a relay that
// holds no token.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { seedObject, seedObjects, seedText } from "../helpers/seed.ts";
import { getJson, kc, kubectl, moduleDown, moduleUp, run, until } from "../helpers/k8s.ts";
import { runEntangle, killAll, type AgentProcess } from "../helpers/agents.ts";
import { managedClusterAndRelay } from "../helpers/managed.ts";

type Any = Record<string, any>;
const CONTROL = process.env.ENTANGLE_TEST_CLUSTER || "test";
const MANAGED = `${CONTROL}-managed`;
const token = newToken();
let control = "";
let managed = "";
let relayAddr = "";
let proxy: AgentProcess | undefined;

const ready = (o: Any) => o.status?.conditions?.find((c: Any) => c.type === "Ready");
const manifests = (name: string, entries: string[], extra = "") =>
  JSON.stringify({
    apiVersion: "entangle-proxy.kairos.io/v1alpha1",
    kind: "Manifests",
    metadata: { name, namespace: "default", ...(extra ? JSON.parse(extra) : {}) },
    spec: { serviceUUID: "foo", secretRef: "mysecret", manifests: entries },
  });
const configMap = (name: string, value = "1") => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: default}\ndata: {value: "${value}"}\n`;

function startApiProxy(withToken = token, service = "foo", extra: string[] = []): AgentProcess {
  return runEntangle(["agent", "api-proxy", "--service", service, ...extra, "--kubeconfig", managed, "--p2p-listen", "127.0.0.1:0", "--peer", relayAddr], {
    ENTANGLE_NETWORK_TOKEN: withToken,
  });
}

async function eventsOf(name: string, reason: string): Promise<Any[]> {
  const cr = await crStatus(name);
  return (await getJson(control, ["events", "-n", "default", "--field-selector", `involvedObject.uid=${cr.metadata.uid},reason=${reason}`])).items;
}

async function crStatus(name: string): Promise<Any> {
  return getJson(control, ["manifests.entangle-proxy.kairos.io", name, "-n", "default"]);
}

async function managedHas(kind: string, name: string): Promise<boolean> {
  return (await kubectl(managed, ["get", kind, name, "-n", "default"])).code === 0;
}

beforeAll(async () => {
  control = inject("kubeconfig");
  ({ managed, relayAddr } = await managedClusterAndRelay(CONTROL));
  await moduleDown(CONTROL);
  await moduleUp(CONTROL, { ENTANGLE_PEERS: relayAddr, ENTANGLE_RESYNC_SECONDS: "3", ENTANGLE_P2P_LISTEN: "127.0.0.1:0" });
  proxy = startApiProxy();
  await proxy.waitMsg("agent started");
  // a kept cluster: the module finalizes what an earlier run deleted (a terminating CR would swallow an apply)
  await until(
    "no Manifests left from an earlier run",
    async () => (await getJson(control, ["manifests.entangle-proxy.kairos.io", "-n", "default"])).items.length === 0,
    120_000,
  );
  // the seed's Secret with this run's token (a kept cluster has an older one), for tests run alone (-t)
  await kc(control, ["apply", "-f", "-"], JSON.stringify(seedObject("control-manifests", "Secret")).replace("YOUR_NETWORK_TOKEN_GOES_HERE", token));
}, 600_000);

afterAll(async () => {
  await kubectl(control, ["delete", "manifests.entangle-proxy.kairos.io", "--all", "-n", "default", "--wait=false"]);
  await moduleDown(CONTROL);
  await killAll();
  await run("bash", ["hack/cluster.sh", "down", MANAGED]);
});

describe("Manifests across two clusters", { timeout: 180_000 }, () => {
  it("the seed's control example creates the Pod in the managed cluster", async () => {
    const r = await kubectl(control, ["apply", "-f", "-"], seedText("control-manifests", token));
    expect(r.code, r.stderr).toBe(0);
    const pod = await until("Pod test in the managed cluster", () => getJson(managed, ["pod", "test", "-n", "default"]), 60_000);
    expect(pod.spec.containers[0].command).toEqual(["sh", "-c", 'echo "Hello, ssaa!" && sleep 3600']);
    const cr = await until("Ready", async () => {
      const o = await crStatus("hello");
      return ready(o)?.status === "True" && o;
    });
    expect(cr.status.applied).toEqual([{ index: 0, apiVersion: "v1", kind: "Pod", namespace: "default", name: "test", state: "Applied" }]);
    expect(cr.status.observedGeneration).toBe(cr.metadata.generation);
  });

  it("a changed list applies the new entries and deletes the removed ones", async () => {
    await kc(control, ["apply", "-f", "-"], manifests("hello", [configMap("cm-a"), configMap("cm-b")]));
    await until("ConfigMaps created", async () => (await managedHas("configmap", "cm-a")) && managedHas("configmap", "cm-b"), 60_000);
    await until(
      "Pod test deleted remotely",
      async () => {
        const p = await kubectl(managed, ["get", "pod", "test", "-n", "default", "-o", "json"]);
        return p.code !== 0 || JSON.parse(p.stdout).metadata.deletionTimestamp !== undefined;
      },
      60_000,
    );
  });

  it("a bad YAML entry fails alone, with the parser's message", async () => {
    await kc(control, ["apply", "-f", "-"], manifests("hello", [configMap("cm-a"), "kind: [unclosed", configMap("cm-c")]));
    const cr = await until(
      "entry 1 failed, others applied",
      async () => {
        const o = await crStatus("hello");
        return (
          o.status?.applied?.some((a: Any) => a.index === 1 && a.state === "Failed") &&
          o.status.applied.some((a: Any) => a.name === "cm-c" && a.state === "Applied") &&
          o
        );
      },
      60_000,
    );
    expect(cr.status.applied.find((a: Any) => a.index === 1).message).toMatch(/invalid YAML/);
    expect(ready(cr)).toMatchObject({ status: "False", reason: "ApplyFailed" });
    expect(await managedHas("configmap", "cm-c")).toBe(true);
  });

  it("drift: an object deleted or edited by hand in the managed cluster is restored", async () => {
    await kc(control, ["apply", "-f", "-"], manifests("hello", [configMap("cm-a", "wanted")]));
    await until("cm-a wanted", async () => (await getJson(managed, ["configmap", "cm-a", "-n", "default"])).data.value === "wanted", 60_000);
    await kc(managed, ["patch", "configmap", "cm-a", "-n", "default", "--type", "merge", "-p", '{"data":{"value":"edited"}}']);
    await until("edit reverted", async () => (await getJson(managed, ["configmap", "cm-a", "-n", "default"])).data.value === "wanted", 30_000);
    await kc(managed, ["delete", "configmap", "cm-a", "-n", "default"]);
    await until("cm-a recreated", () => managedHas("configmap", "cm-a"), 30_000);
  });

  it("never takes over a remote object: neither a user's nor another Manifests'; deleting one CR keeps what another declares", async () => {
    await kc(managed, ["create", "configmap", "users-own", "-n", "default", "--from-literal=value=mine"]);
    await kc(control, ["apply", "-f", "-"], manifests("first", [configMap("shared", "first")]));
    await until("shared by first", async () => (await managedHas("configmap", "shared")) && ready(await crStatus("first"))?.status === "True", 60_000);
    await kc(control, ["apply", "-f", "-"], manifests("second", [configMap("shared", "second"), configMap("users-own", "taken")]));
    const second = await until(
      "second: OwnershipConflict",
      async () => {
        const o = await crStatus("second");
        return ready(o)?.reason === "OwnershipConflict" && o;
      },
      60_000,
    );
    expect(second.status.applied.map((a: Any) => [a.name, a.state, a.message])).toEqual([
      ["shared", "Failed", "ConfigMap default/shared is declared by Manifests default/first: left to it"],
      ["users-own", "Failed", "ConfigMap default/users-own already exists in the remote cluster and was not created by this Manifests: left untouched"],
    ]);
    await new Promise((r) => setTimeout(r, 4_000)); // a resync: still no flip-flop
    expect((await getJson(managed, ["configmap", "shared", "-n", "default"])).data.value).toBe("first");
    expect((await getJson(managed, ["configmap", "users-own", "-n", "default"])).data.value).toBe("mine");
    // the first CR goes: what the second still declares stays, and the second takes it over
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "first", "-n", "default", "--timeout=60s"]);
    await until("second owns shared", async () => (await getJson(managed, ["configmap", "shared", "-n", "default"])).data.value === "second", 60_000);
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "second", "-n", "default", "--timeout=60s"]);
    await until("shared deleted with its last owner", async () => !(await managedHas("configmap", "shared")), 30_000);
    expect((await getJson(managed, ["configmap", "users-own", "-n", "default"])).data.value).toBe("mine");
  });

  it("a List with a null item: the good item is applied and recorded, the bad one fails alone", async () => {
    const list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: from-list, namespace: default}}\n- null\n";
    await kc(control, ["apply", "-f", "-"], manifests("listed", [list, "apiVersion: example.test/v1\nkind: Widget\nmetadata: {name: w}\n"]));
    const cr = await until(
      "listed status",
      async () => {
        const o = await crStatus("listed");
        return o.status?.applied?.length === 3 && o;
      },
      60_000,
    );
    expect(cr.status.applied).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ index: 0, name: "from-list", state: "Applied" }),
        expect.objectContaining({ index: 0, state: "Failed", message: "List items[1]: each object must be a YAML mapping, got null" }),
        expect.objectContaining({ index: 1, kind: "Widget", state: "Failed", message: expect.stringContaining("kind Widget") }),
      ]),
    );
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "listed", "-n", "default", "--timeout=60s"]);
    await until("from-list deleted with the CR", async () => !(await managedHas("configmap", "from-list")), 30_000);
  });

  it("deleting the CR deletes what it applied; the orphan annotation keeps it", async () => {
    await kc(control, ["apply", "-f", "-"], manifests("keep", [configMap("kept")], '{"annotations":{"entangle-proxy.kairos.io/orphan":"true"}}'));
    await until("kept created", () => managedHas("configmap", "kept"), 60_000);
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "keep", "hello", "-n", "default", "--timeout=60s"]);
    await until("cm-a deleted remotely", async () => !(await managedHas("configmap", "cm-a")), 30_000);
    expect(await managedHas("configmap", "kept")).toBe(true);
  });

  it("an applied object whose re-apply fails is still ours: pruned when the spec drops it, deleted with the CR", async () => {
    // a key the API server refuses (422): the objects stay as first applied, carrying our owner annotation
    const refused = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {"not a key!": "x"}\n`;
    await kc(control, ["apply", "-f", "-"], manifests("reapply", [configMap("re-a"), configMap("re-b")]));
    await until("re-a, re-b applied", async () => ready(await crStatus("reapply"))?.status === "True", 60_000);
    await kc(control, ["apply", "-f", "-"], manifests("reapply", [refused("re-a"), refused("re-b"), refused("re-new")]));
    const failed = await until(
      "re-applies failed",
      async () => {
        const o = await crStatus("reapply");
        return o.status?.observedGeneration === o.metadata.generation && o.status.applied?.every((a: Any) => a.state === "Failed") && o;
      },
      60_000,
    );
    // what was applied before keeps where it is; a first apply that failed made nothing to look for
    expect(failed.status.applied.map((a: Any) => [a.name, a.namespace, a.appliedBefore])).toEqual([
      ["re-a", "default", true],
      ["re-b", "default", true],
      ["re-new", undefined, undefined],
    ]);
    expect(failed.status.applied[0].message).toMatch(/not a key!/);
    await kc(control, ["apply", "-f", "-"], manifests("reapply", [refused("re-b")]));
    await until("re-a pruned", async () => !(await managedHas("configmap", "re-a")), 30_000);
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "reapply", "-n", "default", "--timeout=60s"]);
    await until("re-b deleted with the CR", async () => !(await managedHas("configmap", "re-b")), 30_000);
  });

  it("a former target that refuses (403) to let us read what we left there: given up after 5 attempts, with a condition and an Event; the CR's deletion is not held up", async () => {
    // foo-r impersonates entangle-r, who may edit namespace target-r until its binding goes
    await kc(managed, ["create", "namespace", "target-r"]);
    await kc(managed, ["create", "rolebinding", "entangle-r", "--clusterrole=edit", "--user=entangle-r", "-n", "target-r"]);
    const proxyR = startApiProxy(token, "foo-r", ["--as", "entangle-r"]);
    await proxyR.waitMsg("agent started", 60_000);
    const inR = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: refused, namespace: target-r}\n";
    await kc(control, ["apply", "-f", "-"], manifests("refusal", [inR]).replace('"serviceUUID":"foo"', '"serviceUUID":"foo-r"'));
    await until("applied through foo-r", async () => ready(await crStatus("refusal"))?.status === "True", 60_000);
    await kc(managed, ["delete", "rolebinding", "entangle-r", "-n", "target-r"]);
    const canGet = ["auth", "can-i", "get", "configmaps", "-n", "target-r", "--as", "entangle-r"];
    await until("entangle-r may no longer read target-r", async () => (await kubectl(managed, canGet)).stdout.trim() === "no", 30_000);
    // the spec moves to foo: what foo-r holds is to be deleted there, which now refuses every read
    await kc(control, ["apply", "-f", "-"], manifests("refusal", [configMap("refusal-now")]));
    const stopped = await until(
      "DeleteRefused",
      async () => {
        const o = await crStatus("refusal");
        return o.status?.conditions?.find((x: Any) => x.type === "FormerTargetsCleared")?.reason === "DeleteRefused" && o;
      },
      90_000,
    );
    const cond = stopped.status.conditions.find((x: Any) => x.type === "FormerTargetsCleared");
    expect(cond).toMatchObject({
      status: "False",
      message: expect.stringMatching(
        /^ConfigMap target-r\/refused left in service foo-r .*forbidden.*; refused 5 times in a row, no longer retried; grant get and delete/,
      ),
    });
    expect(stopped.status.formerTargets).toEqual([expect.objectContaining({ serviceUUID: "foo-r", refusals: 5 })]);
    expect(ready(stopped)?.status).toBe("True");
    const uid = stopped.metadata.uid;
    const events = async (reason: string) =>
      (await getJson(control, ["events", "-n", "default", "--field-selector", `involvedObject.uid=${uid},reason=${reason}`])).items as Any[];
    const refusedEvents = await until("DeleteRefused event", async () => (await events("DeleteRefused")).length > 0 && events("DeleteRefused"));
    expect(refusedEvents[0]).toMatchObject({
      type: "Warning",
      message: expect.stringMatching(/^ConfigMap target-r\/refused left in service foo-r .*forbidden/),
    });
    // no more attempts: two resyncs later, the same single Event and refusal count
    await new Promise((r) => setTimeout(r, 7_000));
    expect((await events("DeleteRefused")).map((e) => e.count ?? 1)).toEqual([1]);
    expect((await crStatus("refusal")).status.formerTargets[0].refusals).toBe(5);
    // deleting the CR: one more try there, then a Warning names what was left, and the CR goes
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "refusal", "-n", "default", "--timeout=60s"]);
    const orphaned = await until(
      "RemoteObjectsOrphaned event",
      async () => (await events("RemoteObjectsOrphaned")).length > 0 && events("RemoteObjectsOrphaned"),
    );
    expect(orphaned[0]).toMatchObject({
      type: "Warning",
      message: expect.stringMatching(/^could not delete ConfigMap target-r\/refused from service foo-r .*forbidden/),
    });
    expect(await kubectl(managed, ["get", "configmap", "refused", "-n", "target-r"])).toMatchObject({ code: 0 });
    expect(await managedHas("configmap", "refusal-now")).toBe(false);
    await kc(managed, ["delete", "namespace", "target-r", "--wait=false"]);
    await proxyR.kill();
  });

  it("unreachable remote: status says so, the CR stays deletable, and it applies once the remote is back", async () => {
    await proxy!.kill("SIGTERM");
    await kc(control, ["apply", "-f", "-"], manifests("later", [configMap("late")]));
    const cr = await until(
      "RemoteUnreachable",
      async () => {
        const o = await crStatus("later");
        return ready(o)?.reason === "RemoteUnreachable" && o;
      },
      60_000,
    );
    expect(ready(cr).message).toMatch(/unreachable|retrying/);
    proxy = startApiProxy();
    await until("applied after the remote came back", () => managedHas("configmap", "late"), 90_000);

    // doomed applies an object, then loses its remote: deleting it must not block forever, and
    // what it leaves behind is named in a RemoteObjectsOrphaned warning (README, Manifests)
    await kc(control, ["apply", "-f", "-"], manifests("doomed", [configMap("left-by-doomed")]));
    await until("left-by-doomed created", () => managedHas("configmap", "left-by-doomed"), 60_000);
    const doomed = await until("doomed Ready", async () => {
      const o = await crStatus("doomed");
      return ready(o)?.status === "True" && o;
    });
    await proxy.kill("SIGTERM");
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "doomed", "-n", "default", "--timeout=90s"]);
    const orphaned = await until("RemoteObjectsOrphaned", async () => {
      const e = await getJson(control, [
        "events",
        "-n",
        "default",
        "--field-selector",
        `involvedObject.uid=${doomed.metadata.uid},reason=RemoteObjectsOrphaned`,
      ]);
      return e.items.length > 0 && e.items;
    });
    expect(orphaned[0].type).toBe("Warning");
    expect(orphaned[0].message).toMatch(/^could not delete ConfigMap default\/left-by-doomed from .*foo.* they were left in that remote cluster$/);
    expect(await managedHas("configmap", "left-by-doomed")).toBe(true);
  });

  it("api-proxy --as impersonates: RBAC of the managed cluster applies, and its refusal is reported per object", async () => {
    const limited = runEntangle(
      [
        "agent",
        "api-proxy",
        "--service",
        "foo-limited",
        "--as",
        "someone",
        "--as-group",
        "nobody",
        "--kubeconfig",
        managed,
        "--p2p-listen",
        "127.0.0.1:0",
        "--peer",
        relayAddr,
      ],
      { ENTANGLE_NETWORK_TOKEN: token },
    );
    await limited.waitMsg("agent started");
    await kc(control, ["apply", "-f", "-"], manifests("limited", [configMap("not-allowed")]).replace('"serviceUUID":"foo"', '"serviceUUID":"foo-limited"'));
    const cr = await until(
      "Failed with the API server's message",
      async () => {
        const o = await crStatus("limited");
        return o.status?.applied?.[0]?.state === "Failed" && o;
      },
      60_000,
    );
    expect(cr.status.applied[0].message).toMatch(/forbidden.*"someone"/);
    expect(ready(cr)).toMatchObject({ status: "False", reason: "ApplyFailed" });
    expect(await managedHas("configmap", "not-allowed")).toBe(false);
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "limited", "-n", "default"]);
    await limited.kill();
  });

  it("the seed's ClusterRole (pods: create, delete, get, list, update, watch; no patch): created, updated, deleted without server-side apply", async () => {
    // the managed-cluster example's ServiceAccount, ClusterRole and binding, verbatim; its proxy impersonates the account
    const rbac = seedObjects("managed-cluster").filter((o) => ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"].includes(o.kind));
    expect(rbac.map((o) => o.kind)).toEqual(["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]);
    await kc(managed, ["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: rbac }));
    const seedProxy = startApiProxy(token, "foo-seed", ["--as", "system:serviceaccount:default:entangle"]);
    await seedProxy.waitMsg("agent started", 60_000);
    await until("no Pod test left by earlier tests", async () => !(await managedHas("pod", "test")), 30_000);

    const hello = seedObject("control-manifests", "Manifests") as Any;
    const seedPod = hello.spec.manifests[0] as string;
    const cr = (name: string, entries: string[]) => manifests(name, entries).replace('"serviceUUID":"foo"', '"serviceUUID":"foo-seed"');
    await kc(control, ["apply", "-f", "-"], cr("seedrbac", [seedPod]));
    const pod = await until(
      "Pod test created through the seed's RBAC",
      () => getJson(managed, ["pod", "test", "-n", "default", "--show-managed-fields"]),
      60_000,
    );
    // created by a POST, not applied: the server-side apply was refused
    expect(pod.metadata.managedFields.map((m: Any) => [m.manager, m.operation])).toContainEqual(["entangle-proxy", "Update"]);
    expect(pod.metadata.managedFields.some((m: Any) => m.operation === "Apply")).toBe(false);
    expect(pod.metadata.annotations["entangle-proxy.kairos.io/owner"]).toBe("default/seedrbac");
    await until("Ready", async () => ready(await crStatus("seedrbac"))?.status === "True", 30_000);

    // nothing to change: no write at all on the resyncs (every 3 s here)
    await new Promise((r) => setTimeout(r, 7_000));
    expect((await getJson(managed, ["pod", "test", "-n", "default"])).metadata.resourceVersion).toBe(pod.metadata.resourceVersion);

    // a change is an update (PUT) of the live Pod: its server-set fields stay, so the update is valid
    await kc(control, ["apply", "-f", "-"], cr("seedrbac", [seedPod.replace("busybox:1.28", "busybox:1.29")]));
    await until("image updated", async () => (await getJson(managed, ["pod", "test", "-n", "default"])).spec.containers[0].image === "busybox:1.29", 60_000);

    // a kind the role does not grant at all: one clear message for that object, the Pod unaffected
    await kc(control, ["apply", "-f", "-"], cr("seedrbac", [seedPod.replace("busybox:1.28", "busybox:1.29"), configMap("no-rbac")]));
    const refused = await until(
      "ConfigMap refused",
      async () => {
        const o = await crStatus("seedrbac");
        return o.status?.applied?.find((a: Any) => a.name === "no-rbac" && a.state === "Failed");
      },
      60_000,
    );
    expect(refused.message).toMatch(
      /refused to read .*forbidden.* and to create .*forbidden.*; its RBAC must allow get with patch, or get, create and update, on ConfigMap$/,
    );
    expect((await crStatus("seedrbac")).status.applied.find((a: Any) => a.name === "test").state).toBe("Applied");
    expect(await managedHas("configmap", "no-rbac")).toBe(false);

    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "seedrbac", "-n", "default", "--timeout=60s"]);
    await until("Pod test deleted with the CR", async () => !(await managedHas("pod", "test")), 30_000);
    await seedProxy.kill();
  });

  it("a new serviceUUID: objects are deleted from the former target (retried while it is unreachable, status and Events say where)", async () => {
    // two targets in one managed cluster: foo-a (full rights) and foo-b, which may only touch namespace target-b,
    // so nothing through foo-b can delete what foo-a holds
    for (const ns of ["target-a", "target-b"]) await kc(managed, ["create", "namespace", ns]);
    await kc(managed, ["create", "rolebinding", "entangle-b", "--clusterrole=edit", "--user=entangle-b", "-n", "target-b"]);
    let proxyA = startApiProxy(token, "foo-a");
    const proxyB = startApiProxy(token, "foo-b", ["--as", "entangle-b"]);
    await Promise.all([proxyA.waitMsg("agent started", 60_000), proxyB.waitMsg("agent started", 60_000)]);
    const inNs = (ns: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: moved, namespace: ${ns}}\n`;
    const mover = (service: string, ns: string) => manifests("mover", [inNs(ns)]).replace('"serviceUUID":"foo"', `"serviceUUID":"${service}"`);
    const has = async (ns: string) => (await kubectl(managed, ["get", "configmap", "moved", "-n", ns])).code === 0;

    await kc(control, ["apply", "-f", "-"], mover("foo-a", "target-a"));
    const first = await until(
      "applied to foo-a",
      async () => {
        const o = await crStatus("mover");
        return ready(o)?.status === "True" && o;
      },
      60_000,
    );
    expect(first.status.target).toEqual({ serviceUUID: "foo-a", secretRef: "mysecret" });
    expect(await has("target-a")).toBe(true);

    // the former target is unreachable when the spec moves: the new one is served, the old one retried
    await proxyA.kill("SIGTERM");
    await kc(control, ["apply", "-f", "-"], mover("foo-b", "target-b"));
    const pending = await until(
      "DeletePending",
      async () => {
        const o = await crStatus("mover");
        const c = o.status?.conditions?.find((x: Any) => x.type === "FormerTargetsCleared");
        return c?.reason === "DeletePending" && ready(o)?.status === "True" && o;
      },
      90_000,
    );
    expect(await has("target-b")).toBe(true);
    expect(await has("target-a")).toBe(true);
    expect(pending.status.target).toEqual({ serviceUUID: "foo-b", secretRef: "mysecret" });
    expect(pending.status.formerTargets).toEqual([
      expect.objectContaining({ serviceUUID: "foo-a", secretRef: "mysecret", applied: [expect.objectContaining({ namespace: "target-a", name: "moved" })] }),
    ]);
    const cond = pending.status.conditions.find((x: Any) => x.type === "FormerTargetsCleared");
    expect(cond.message).toMatch(/^ConfigMap target-a\/moved left in service foo-a \(token of Secret mysecret\): remote unreachable/);
    const left = await until("RemoteObjectsLeft event", () => eventsOf("mover", "RemoteObjectsLeft").then((e) => e.length > 0 && e));
    expect(left[0]).toMatchObject({ type: "Warning", message: expect.stringContaining("ConfigMap target-a/moved left in service foo-a") });
    expect(JSON.stringify(pending.status)).not.toContain(token);

    // back: deleted there, the condition clears
    proxyA = startApiProxy(token, "foo-a");
    await until("deleted from the former target", async () => !(await has("target-a")), 90_000);
    const cleared = await until(
      "FormerTargetsCleared",
      async () => {
        const o = await crStatus("mover");
        return o.status?.conditions?.find((x: Any) => x.type === "FormerTargetsCleared")?.status === "True" && o;
      },
      30_000,
    );
    expect(cleared.status.formerTargets).toBeUndefined();
    expect((await eventsOf("mover", "FormerTargetCleared"))[0].message).toBe("deleted ConfigMap target-a/moved from service foo-a (token of Secret mysecret)");

    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "mover", "-n", "default", "--timeout=60s"]);
    await until("deleted from the current target with the CR", async () => !(await has("target-b")), 30_000);
    await Promise.all([proxyA.kill(), proxyB.kill()]);
  });

  it("a managed side with another token is never reached and gets nothing", async () => {
    // rendezvous keys come from the token: the two cannot even find each other at the relay
    proxy = startApiProxy(newToken());
    await proxy.waitMsg("agent started");
    await kc(control, ["apply", "-f", "-"], manifests("intruder", [configMap("intruder")]));
    await until("RemoteUnreachable", async () => ready(await crStatus("intruder"))?.reason === "RemoteUnreachable", 60_000);
    expect(await managedHas("configmap", "intruder")).toBe(false);
    expect(proxy.lines.some((l) => l.msg === "member authenticated")).toBe(false);
  });
});
