// One real tunnel from what the controller rendered: there is no kubelet here, so the agents of
// an outbound and an inbound Entanglement run as local processes with exactly their pod's
// args and env (the token resolved from the Secret the secretKeyRef names). Only addresses
// a pod would own (0.0.0.0 listeners, fixed ports) are moved to free ports on 127.0.0.1.
import { createServer } from "node:http";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { getJson, kc, moduleDown, moduleUp, until } from "../helpers/k8s.ts";
import { httpGet, killAll, runEntangle } from "../helpers/agents.ts";

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const CLUSTER = process.env.ENTANGLE_TEST_CLUSTER || "test";
const NS = "rendered";
let kcfg = "";
const web = createServer((req, res) => res.end(`served through the tunnel: ${req.url}`));

beforeAll(async () => {
  kcfg = inject("kubeconfig");
  await new Promise<void>((r) => web.listen(0, "127.0.0.1", () => r()));
  const relay = runEntangle(["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
  const relayAddr = ((await relay.waitMsg("agent started")).addrs as string[])[0];
  await moduleDown(CLUSTER);
  await moduleUp(CLUSTER, { ENTANGLE_PEERS: relayAddr, ENTANGLE_P2P_LISTEN: "127.0.0.1:0" });
}, 240_000);

afterAll(async () => {
  await killAll();
  web.close();
  await kc(kcfg, ["delete", "namespace", NS, "--wait=false"]).catch(() => undefined);
  await moduleDown(CLUSTER);
});

/** The agent container of a rendered Deployment, as a local command line and environment. */
async function agentProcessOf(deployment: string): Promise<{ args: string[]; env: Record<string, string> }> {
  const dep = await until(`Deployment ${deployment}`, () => getJson(kcfg, ["deployment", deployment, "-n", NS]));
  const c = dep.spec.template.spec.containers.find((x: Any) => x.name === "entangle-agent");
  expect(c.command).toEqual(["entangle"]);
  const env: Record<string, string> = {};
  for (const e of c.env as Any[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const secret = await getJson(kcfg, ["secret", name, "-n", NS]);
      env[e.name] = Buffer.from(secret.data[key], "base64").toString("utf8");
    }
  }
  const args = (c.args as string[]).map((a, i, all) => (["--listen", "--health-listen"].includes(all[i - 1]) ? "127.0.0.1:0" : a));
  return { args, env };
}

it("agents run from the rendered outbound and inbound Deployments carry HTTP between them", async () => {
  const port = (web.address() as { port: number }).port;
  await kc(kcfg, ["create", "namespace", NS]);
  await kc(kcfg, ["create", "secret", "generic", "tok", "-n", NS, `--from-literal=network_token=${newToken()}`]);
  await kc(kcfg, ["apply", "-f", "-"], `apiVersion: entangle.kairos.io/v1alpha1
kind: Entanglement
metadata: {name: web-out, namespace: ${NS}}
spec: {serviceUUID: web, secretRef: tok, host: 127.0.0.1, port: "${port}"}
---
apiVersion: entangle.kairos.io/v1alpha1
kind: Entanglement
metadata: {name: web-in, namespace: ${NS}}
spec:
  serviceUUID: web
  secretRef: tok
  host: 127.0.0.1
  port: "8080"
  inbound: true
  serviceSpec: {ports: [{port: 8080, protocol: TCP}], type: ClusterIP}
`);
  const out = await agentProcessOf("entangle-web-out");
  const inb = await agentProcessOf("entangle-web-in");
  expect(out.args).toContain(`127.0.0.1:${port}`);
  expect(out.args).toContain("--peer"); // the module's ENTANGLE_PEERS reached the pod spec

  const expose = runEntangle(out.args, out.env);
  const connect = runEntangle(inb.args, inb.env);
  const listen = Number(String((await connect.waitMsg("accepting connections")).listen).split(":").pop());
  await connect.waitMsg("member authenticated", 20_000);
  await expose.waitMsg("member authenticated", 20_000);
  const res = await until("response through the tunnel", async () => {
    const r = await httpGet(listen, "/hello");
    return r.status === 200 && r;
  }, 20_000);
  expect(res.body).toBe("served through the tunnel: /hello");
});
