// The original entangle-proxy's Manifests fields between two real API servers (issue 14):
// status.executed for scripts, and the annotation entanglement-proxy.kairos.io/no-finalize
// (present = deleting the CR leaves the remote objects). The managed side is
// `entangle agent api-proxy`, both meeting through a relay without the token.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { getJson, kc, kubectl, moduleDown, moduleUp, run, until } from "../helpers/k8s.ts";
import { runEntangle, killAll } from "../helpers/agents.ts";
import { managedClusterAndRelay } from "../helpers/managed.ts";

type Any = Record<string, any>;
const CONTROL = process.env.ENTANGLE_TEST_CLUSTER || "test";
const MANAGED = `${CONTROL}-managed`;
const NS = "compat-mf";
const token = newToken();
let control = "";
let managed = "";

const manifests = (name: string, entries: string[], annotations: Record<string, string> = {}) =>
  JSON.stringify({
    apiVersion: "entangle-proxy.kairos.io/v1alpha1",
    kind: "Manifests",
    metadata: { name, namespace: NS, annotations },
    spec: { serviceUUID: "compat", secretRef: "mysecret", manifests: entries },
  });
const configMap = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: default}\ndata: {value: "1"}\n`;
const status = async (name: string) => (await getJson(control, ["manifests.entangle-proxy.kairos.io", name, "-n", NS])).status ?? {};
const managedHas = async (name: string) => (await kubectl(managed, ["get", "configmap", name, "-n", "default"])).code === 0;

beforeAll(async () => {
  control = inject("kubeconfig");
  const { managed: kubeconfig, relayAddr } = await managedClusterAndRelay(CONTROL);
  managed = kubeconfig;
  await moduleDown(CONTROL);
  await moduleUp(CONTROL, { ENTANGLE_PEERS: relayAddr, ENTANGLE_RESYNC_SECONDS: "3", ENTANGLE_P2P_LISTEN: "127.0.0.1:0" });
  const proxy = runEntangle(["agent", "api-proxy", "--service", "compat", "--kubeconfig", managed, "--p2p-listen", "127.0.0.1:0", "--peer", relayAddr], {
    ENTANGLE_NETWORK_TOKEN: token,
  });
  await proxy.waitMsg("agent started");
  await kubectl(control, ["create", "namespace", NS]);
  await kc(
    control,
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "mysecret", namespace: NS }, stringData: { network_token: token } }),
  );
}, 600_000);

afterAll(async () => {
  await kubectl(control, ["delete", "manifests.entangle-proxy.kairos.io", "--all", "-n", NS, "--timeout=60s"]);
  await kubectl(control, ["delete", "namespace", NS, "--wait=false"]);
  await moduleDown(CONTROL);
  await killAll();
  await run("bash", ["hack/cluster.sh", "down", MANAGED]);
});

describe("the original entangle-proxy's Manifests fields", { timeout: 180_000 }, () => {
  it("status.executed: true once every entry applied, false while an entry fails, true again when fixed", async () => {
    await kc(control, ["apply", "-f", "-"], manifests("scripted", [configMap("scripted-a")]));
    await until("executed", async () => (await status("scripted")).executed === true, 60_000);
    // what a script of the original reads
    expect(await kc(control, ["get", "manifests.entangle-proxy.kairos.io", "scripted", "-n", NS, "-o", "jsonpath={.status.executed}"])).toBe("true");
    expect(await managedHas("scripted-a")).toBe(true);

    await kc(
      control,
      ["apply", "-f", "-"],
      manifests("scripted", [configMap("scripted-a"), "apiVersion: example.test/v1\nkind: Nothing\nmetadata: {name: x}\n"]),
    );
    const failing = await until(
      "executed false",
      async () => {
        const s = await status("scripted");
        return s.executed === false && s;
      },
      60_000,
    );
    expect(failing.conditions.find((c: Any) => c.type === "Ready")).toMatchObject({ status: "False", reason: "ApplyFailed" });

    await kc(control, ["apply", "-f", "-"], manifests("scripted", [configMap("scripted-a"), configMap("scripted-b")]));
    await until("executed again", async () => (await status("scripted")).executed === true, 60_000);
    expect(await managedHas("scripted-b")).toBe(true);
  });

  it("no-finalize (present, any value) leaves the remote objects when the CR is deleted; without it they go", async () => {
    await kc(control, ["apply", "-f", "-"], manifests("one-shot", [configMap("one-shot")], { "entanglement-proxy.kairos.io/no-finalize": "" }));
    await until("one-shot executed", async () => (await status("one-shot")).executed === true, 60_000);
    await kc(control, ["delete", "manifests.entangle-proxy.kairos.io", "one-shot", "scripted", "-n", NS, "--timeout=60s"]);
    await until("scripted-a deleted remotely", async () => !(await managedHas("scripted-a")), 30_000);
    expect(await managedHas("one-shot")).toBe(true);
    await kc(managed, ["delete", "configmap", "one-shot", "-n", "default"]);
  });
});
