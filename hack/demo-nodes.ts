// `npm run demo` on real nodes: two clusters, each with a real node (containerd, kubelet,
// kube-proxy) in its own network namespace, Entangle installed in each the way users install it,
// the seed's examples applied as written, everything checked from inside pods, cleaned up at the
// end; exit 0 only when the request through the tunnel and the remote apply both worked.
//
//   cluster A: a service on its node exposed by the seed's outbound Entanglement (hostNetwork);
//              the control cluster of the seed's Manifests CR "hello"
//   cluster B: the seed's inbound Entanglement reaching A's service from a pod; the managed
//              cluster, running the seed's kubectl-proxy Deployment whose pods get the sidecar
//   a relay:   on this machine, WITHOUT the token; the only address the modules are given
import { spawn } from "node:child_process";
import { newToken, inspectToken } from "../lib/p2p/token.ts";
import { cluster, clusterUp } from "../test/helpers/cluster.ts";
import { getJson, kc, kubectl, run, until } from "../test/helpers/k8s.ts";
import { httpGetFromPod, nodeWebPod, podLog } from "../test/helpers/nodes.ts";
import { freePort } from "../test/helpers/agents.ts";
import { seedText } from "../test/helpers/seed.ts";

const t0 = Date.now();
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const step = (text: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${text}`);
const indent = (text: string) => text.trimEnd().replace(/^/gm, "           ");
type Condition = { type: string; status: string };

async function nodeCluster(name: string): Promise<{ kubeconfig: string; nodeIP: string; hostIP: string }> {
  cleanups.push(() => cluster("down", name));
  const v = await clusterUp(name, "--node");
  return { kubeconfig: v.KUBECONFIG, nodeIP: v.NODE_IP, hostIP: v.HOST_IP };
}

async function ready(kubeconfig: string, ref: string, ms = 120_000): Promise<void> {
  await until(
    `${ref} Ready`,
    async () => ((await getJson(kubeconfig, [ref])).status?.conditions ?? []).some((c: Condition) => c.type === "Ready" && c.status === "True"),
    ms,
  );
}

export async function nodesDemo(): Promise<void> {
  step("starting clusters A and B, each with a real node in its own network namespace (first run: builds ~30 min)");
  const a = await nodeCluster("demo-a");
  const b = await nodeCluster("demo-b");
  step(`A: node ${a.nodeIP}, B: node ${b.nodeIP}`);

  const relayAddr = `${a.hostIP}:${await freePort(a.hostIP)}`;
  const relay = spawn("node_modules/.bin/node", ["bin/entangle.js", "agent", "relay", "--p2p-listen", relayAddr], { stdio: "ignore" });
  cleanups.push(() => relay.kill());
  step(`relay without the token on ${relayAddr} (pods of both clusters reach it)`);

  for (const name of ["demo-a", "demo-b"]) {
    const r = await run("bash", ["hack/deploy.sh", name], { env: { ENTANGLE_PEERS: relayAddr }, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`hack/deploy.sh ${name} failed:\n${r.stderr}`);
  }
  step("Entangle installed in both clusters (hack/deploy.sh: kubectl apply --server-side of npm run build; module pods Ready)");
  const token = newToken();
  step(`network token created (fingerprint ${inspectToken(token).fingerprint})`);

  // --- a service on A's node, reached from a pod in B ---------------------------------------
  await kc(a.kubeconfig, ["apply", "-f", "-"], nodeWebPod(a.nodeIP, 8088, "hello from cluster A's service"));
  await kc(a.kubeconfig, ["apply", "-f", "-"], seedText("outbound-entanglement", token).replace("192.168.1.1", a.nodeIP).replace('port: "80"', 'port: "8088"'));
  step(`A: a web server on the node (${a.nodeIP}:8088) and the seed's outbound Entanglement test2 (hostNetwork; host ${a.nodeIP}:8088 for 192.168.1.1:80)`);
  await kc(b.kubeconfig, ["apply", "-f", "-"], seedText("inbound-entanglement", token));
  step("B: the seed's inbound Entanglement test3 (port 8080, ClusterIP Service)");
  await ready(a.kubeconfig, "entanglement/test2");
  await ready(b.kubeconfig, "entanglement/test3");
  step("both Entanglements Ready (their agent pods passed /readyz: each has a peer for foo2)");
  const ip = (await kc(b.kubeconfig, ["get", "service", "test3", "-o", "jsonpath={.spec.clusterIP}"])).trim();
  const body = await httpGetFromPod(b.kubeconfig, "demo-client", ip, 8080, "/");
  step(`B: a pod sent GET / to Service test3 (${ip}:8080) -> ${body.trim()}`);

  // --- remote manifests: A's module applies to B through B's kubectl-proxy pod -------------
  await kc(b.kubeconfig, ["apply", "-f", "-"], seedText("managed-cluster", token));
  step("B: applied the seed's managed-cluster example (kubectl proxy Deployment with entangle labels)");
  await kc(b.kubeconfig, ["rollout", "status", "deployment/agent-proxy", "--timeout=150s"]);
  step("B: agent-proxy running with the sidecar the webhook injected");
  await kc(a.kubeconfig, ["apply", "-f", "-"], seedText("control-manifests", token));
  step("A: applied the seed's Manifests 'hello' (a Pod named test, for cluster B)");
  await ready(a.kubeconfig, "manifests/hello");
  const log = await until("Pod test's log in B", () => podLog(b.kubeconfig, "test"), 120_000);
  step(`B: Pod test created remotely through the tunnel; it runs busybox and logs: ${log.trim()}`);

  step("cluster A:");
  console.log(indent((await kubectl(a.kubeconfig, ["get", "entanglements,manifests,pods", "-o", "wide"])).stdout));
  step("cluster B:");
  console.log(indent((await kubectl(b.kubeconfig, ["get", "entanglements,services,pods"])).stdout));
}

export async function cleanUp(): Promise<void> {
  for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => undefined);
}
