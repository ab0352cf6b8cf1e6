// One real tunnel from what the controller rendered: there is no kubelet here, so the agents of
// an outbound and an inbound Entanglement run as local processes with exactly their pod's
// args and env (the token resolved from the Secret the secretKeyRef names). Only addresses
// a pod would own (0.0.0.0 listeners, fixed ports) are moved to free ports on 127.0.0.1.
import { createServer } from "node:http";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { kc, moduleDown, moduleUp, until } from "../helpers/k8s.ts";
import { deploymentAgent } from "../helpers/pods.ts";
import { httpGet, killAll, runEntangle } from "../helpers/agents.ts";

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

it("agents run from the rendered outbound and inbound Deployments carry HTTP between them", async () => {
  const port = (web.address() as { port: number }).port;
  await kc(kcfg, ["create", "namespace", NS]);
  await kc(kcfg, ["create", "secret", "generic", "tok", "-n", NS, `--from-literal=network_token=${newToken()}`]);
  await kc(
    kcfg,
    ["apply", "-f", "-"],
    `apiVersion: entangle.kairos.io/v1alpha1
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
`,
  );
  const out = await deploymentAgent(kcfg, NS, "entangle-web-out");
  const inb = await deploymentAgent(kcfg, NS, "entangle-web-in");
  expect(out.container.command).toEqual(["entangle"]);
  expect(out.args).toContain(`127.0.0.1:${port}`);
  expect(out.args).toContain("--peer"); // the module's ENTANGLE_PEERS reached the pod spec

  const expose = runEntangle(out.args, out.env);
  const connect = runEntangle(inb.args, inb.env);
  const listen = await connect.listenPort();
  await connect.waitMsg("member authenticated", 20_000);
  await expose.waitMsg("member authenticated", 20_000);
  const res = await until(
    "response through the tunnel",
    async () => {
      const r = await httpGet(listen, "/hello");
      return r.status === 200 && r;
    },
    20_000,
  );
  expect(res.body).toBe("served through the tunnel: /hello");
});
