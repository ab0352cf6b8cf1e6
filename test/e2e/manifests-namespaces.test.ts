// A corner of the Manifests controller between two real API servers (set up like
// test/e2e/manifests.test.ts: the module on the control cluster, `entangle agent api-proxy` for
// the managed one, a relay that holds no token):
// - a record names its namespace: one applied in default never vouches for a user's object of
//   the same kind and name in another namespace (lib/remote/manifests.ts sameObject).
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

describe("Manifests: namespaces", { timeout: 180_000 }, () => {
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
});
