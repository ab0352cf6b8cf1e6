// `npm run demo`: the whole product on one machine, everything on 127.0.0.1, cleaned up at the
// end; exit 0 only when the request through the tunnel and the remote apply both worked.
//
//   cluster A: an HTTP service exposed by an outbound Entanglement; the control cluster of a
//              Manifests CR (the seed's "hello" example)
//   cluster B: an inbound Entanglement reaching A's service; the managed cluster, running the
//              seed's kubectl-proxy Deployment whose pods get the entangle sidecar
//   a relay:   WITHOUT the token; the only address anyone is given
//
// Where the machine allows real nodes (root, network namespaces), hack/demo-nodes.ts runs it all on
// real pods with Entangle installed in-cluster. Elsewhere (or with --processes) these clusters
// have no kubelet, so the processes their pods would run (agents from the rendered pod specs,
// `kubectl proxy`) run here as local processes.
//   npm run demo -- --processes   the process-based variant
//   npm run demo -- --tunnel      only the two-agent tunnel (seconds, no clusters)
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { newToken, inspectToken } from "../lib/p2p/token.ts";
import { freePort, runEntangle, killAll, type AgentProcess } from "../test/helpers/agents.ts";
import { KUBECTL, getJson, kc, kubectl, moduleDown, moduleUp, run, until } from "../test/helpers/k8s.ts";
import { deploymentAgent, sidecarAgent } from "../test/helpers/pods.ts";
import { seedText } from "../test/helpers/seed.ts";
import { cleanUp as nodesCleanUp, nodesDemo } from "./demo-nodes.ts";

const t0 = Date.now();
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const step = (text: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${text}`);
const indent = (text: string) => text.trimEnd().replace(/^/gm, "           ");

async function httpService(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => res.end(`hello from cluster A's service (${req.method} ${req.url})\n`));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { server, port: (server.address() as { port: number }).port };
}

async function startRelay(): Promise<string> {
  const relay = runEntangle(["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
  return ((await relay.waitMsg("agent started")).addrs as string[])[0];
}

async function fetchThrough(port: number, path: string): Promise<string> {
  return until(
    `an answer through the tunnel on 127.0.0.1:${port}`,
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
      return res.ok && (await res.text());
    },
    30_000,
  );
}

async function clusterUp(name: string): Promise<string> {
  // progress of a first-time build goes straight to the terminal
  const child = spawn("bash", ["hack/cluster.sh", "up", name], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const code = await new Promise((r) => child.once("close", r));
  if (code !== 0) throw new Error(`hack/cluster.sh up ${name} failed`);
  cleanups.push(() => run("bash", ["hack/cluster.sh", "down", name]));
  return out
    .trim()
    .split("\n")
    .pop()!
    .replace(/^KUBECONFIG=/, "");
}

async function clusterDemo(): Promise<void> {
  step("starting two local control planes, A and B (the first run builds them from source: ~10 min)");
  const [a, b] = [await clusterUp("demo-a"), await clusterUp("demo-b")];
  const relay = await startRelay();
  step(`relay without the token on ${relay}`);
  const moduleEnv = { ENTANGLE_PEERS: relay, ENTANGLE_P2P_LISTEN: "127.0.0.1:0" };
  for (const name of ["demo-a", "demo-b"]) {
    await moduleDown(name);
    await moduleUp(name, moduleEnv);
    cleanups.push(() => moduleDown(name));
  }
  step("Entangle module running against each cluster (webhook + controllers, as `pepr dev`)");
  const token = newToken();
  step(`network token created (fingerprint ${inspectToken(token).fingerprint})`);

  // --- services: A exposes, B reaches it through a ClusterIP Service -----------------------
  const web = await httpService();
  await kc(a, ["apply", "-f", "-"], seedText("outbound-entanglement", token).replace('"192.168.1.1"', '"127.0.0.1"').replace('"80"', `"${web.port}"`));
  await kc(b, ["apply", "-f", "-"], seedText("inbound-entanglement", token));
  step(`A: applied the seed's outbound Entanglement test2 (host 192.168.1.1:80 -> our service on 127.0.0.1:${web.port})`);
  step("B: applied the seed's inbound Entanglement test3 (port 8080, ClusterIP Service)");
  const out = await deploymentAgent(a, "default", "entangle-test2");
  const inb = await deploymentAgent(b, "default", "entangle-test3");
  step(`A: the controller rendered Deployment entangle-test2: entangle ${out.container.args.join(" ")}`);
  step(`B: the controller rendered Deployment entangle-test3: entangle ${inb.container.args.join(" ")}`);
  runEntangle(out.args, out.env);
  const connectAgent = runEntangle(inb.args, inb.env);
  const listen = await connectAgent.listenPort();
  const auth = await connectAgent.waitMsg("member authenticated", 30_000);
  step(`B: agent found A's agent through the relay (${auth.path} path, ${auth.encryption})`);
  const body = await fetchThrough(listen, "/through-the-tunnel");
  step(`B: GET /through-the-tunnel -> ${body.trim()}`);

  // --- remote manifests: A's module applies to B through B's kubectl-proxy pod --------------
  await kc(b, ["apply", "-f", "-"], seedText("managed-cluster", token));
  step("B: applied the seed's managed-cluster example (ServiceAccount, ClusterRole, agent-proxy Deployment with entangle labels)");
  const proxyPort = await freePort();
  const sidecar = await sidecarAgent(b, "default", "app=agent-proxy", { "127.0.0.1:8001": `127.0.0.1:${proxyPort}` });
  step(`B: the webhook injected the sidecar into agent-proxy's pod: entangle ${sidecar.container.args.join(" ")}`);
  const kubectlProxy: ChildProcess = spawn(KUBECTL, ["--kubeconfig", b, "proxy", "--address", "127.0.0.1", "--port", String(proxyPort)], { stdio: "ignore" });
  cleanups.push(() => kubectlProxy.kill());
  const exposeApi: AgentProcess = runEntangle(sidecar.args, sidecar.env);
  await exposeApi.waitMsg("agent started");
  step(`B: running that pod's processes: kubectl proxy (port ${proxyPort} instead of 8001) and the sidecar`);

  await kc(a, ["apply", "-f", "-"], seedText("control-manifests", token));
  step("A: applied the seed's Manifests 'hello' (a Pod named test, for cluster B)");
  const pod = await until("Pod test in cluster B", () => getJson(b, ["pod", "test", "-n", "default"]), 60_000);
  step(`B: Pod ${pod.metadata.name} created remotely (image ${pod.spec.containers[0].image}) by server-side apply through the tunnel`);
  await until(
    "Manifests hello Ready",
    async () =>
      (await getJson(a, ["manifests.entangle-proxy.kairos.io", "hello", "-n", "default"])).status?.conditions?.some(
        (c: { type: string; status: string }) => c.type === "Ready" && c.status === "True",
      ),
    30_000,
  );

  step("status (Entanglements stay Ready=False here: no kubelet runs their agent pods):");
  step("cluster A:");
  console.log(indent((await kubectl(a, ["get", "entanglements,manifests.entangle-proxy.kairos.io", "-n", "default"])).stdout));
  step("cluster B:");
  console.log(indent((await kubectl(b, ["get", "entanglements,services,pods", "-n", "default"])).stdout));
}

/** Why real nodes cannot run here, or undefined when they can. */
function noRealNodes(): string | undefined {
  if (process.getuid?.() !== 0) return "not root";
  return spawnSync("ip", ["netns", "list"], { stdio: "ignore" }).status === 0 ? undefined : "no network namespaces (ip netns)";
}

async function tunnelDemo(): Promise<void> {
  const token = newToken();
  step(`network token created (fingerprint ${inspectToken(token).fingerprint})`);
  const web = await httpService();
  const relay = await startRelay();
  step(`relay (no token) listening on ${relay}`);
  const common = ["--p2p-listen", "127.0.0.1:0", "--peer", relay];
  runEntangle(["agent", "expose", "--service", "demo-web", "--target", `127.0.0.1:${web.port}`, ...common], { ENTANGLE_NETWORK_TOKEN: token });
  const connect = runEntangle(["agent", "connect", "--service", "demo-web", "--listen", "127.0.0.1:0", ...common], { ENTANGLE_NETWORK_TOKEN: token });
  const listen = await connect.listenPort();
  const auth = await connect.waitMsg("member authenticated", 20_000);
  step(`connect agent found the exposing agent through the relay (${auth.path} path, ${auth.encryption})`);
  step(`GET /through-the-tunnel -> ${(await fetchThrough(listen, "/through-the-tunnel")).trim()}`);
}

async function main(): Promise<number> {
  const onSignal = () => step("interrupted: cleaning up");
  process.once("SIGINT", onSignal);
  try {
    if (process.argv.includes("--tunnel")) {
      await tunnelDemo();
      step("demo OK: request through the tunnel worked");
    } else if (process.argv.includes("--processes")) {
      await clusterDemo();
      step("demo OK: request through the tunnel and remote apply both worked");
    } else if (!noRealNodes()) {
      await nodesDemo();
      step("demo OK: request through the tunnel and remote apply both worked, on real pods");
    } else {
      step(`no real nodes here (${noRealNodes()}): agents and kubectl proxy run as local processes`);
      await clusterDemo();
      step("demo OK: request through the tunnel and remote apply both worked");
    }
    return 0;
  } catch (err) {
    step(`demo FAILED: ${(err as Error).message}`);
    return 1;
  } finally {
    await killAll();
    await nodesCleanUp();
    for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => undefined);
    step("cleaned up");
  }
}

process.exit(await main());
