// vitest globalSetup for the `nodes` project: two clusters with a real node each
// (hack/cluster.sh up NAME --node: containerd, kubelet, kube-proxy in the cluster's own network
// namespace), a relay on the host that pods of both reach, and Entangle installed in each the
// way the README tells users to (hack/deploy.sh), its agents dialing that relay.
//
// Tests read `inject("clusters")` and `inject("peers")`.
//   ENTANGLE_KEEP_CLUSTER=1   leave both clusters running (the next run reuses them)
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { cluster, clusterUp } from "../helpers/cluster.ts";
import { ROOT, run } from "../helpers/k8s.ts";

export interface NodeCluster {
  name: string;
  kubeconfig: string;
  /** the node's address (hostNetwork pods have it) */
  nodeIP: string;
  /** an address of this machine that the cluster's pods reach */
  hostIP: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    clusters: { a: NodeCluster; b: NodeCluster };
    /** ENTANGLE_PEERS given to both modules: the host relay */
    peers: string;
  }
}

const NAMES = { a: "na", b: "nb" } as const;

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function up(name: string): Promise<NodeCluster> {
  const v = await clusterUp(name, "--node");
  if (!v.NODE_IP || !v.HOST_IP) throw new Error(`hack/cluster.sh up ${name} --node printed no NODE_IP/HOST_IP`);
  return { name, kubeconfig: v.KUBECONFIG, nodeIP: v.NODE_IP, hostIP: v.HOST_IP };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // One after the other: two cold `up`s on two cores only slow each other down.
  const a = await up(NAMES.a);
  const b = await up(NAMES.b);

  // The relay holds no token; it listens on an address of this machine that both clusters' pods
  // route to (cluster A's host end; B's pods reach it through the host's forwarding).
  const port = await freePort(a.hostIP);
  const peers = `${a.hostIP}:${port}`;
  const relay: ChildProcess = spawn(join(ROOT, "node_modules/.bin/node"), ["bin/entangle.js", "agent", "relay", "--p2p-listen", peers], {
    cwd: ROOT,
    stdio: "ignore",
  });

  for (const c of [a, b]) {
    const r = await run("bash", ["hack/deploy.sh", c.name], { env: { ENTANGLE_PEERS: peers }, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`hack/deploy.sh ${c.name} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  project.provide("clusters", { a, b });
  project.provide("peers", peers);

  return async () => {
    relay.kill("SIGTERM");
    if (process.env.ENTANGLE_KEEP_CLUSTER === "1") {
      process.stderr.write(`[nodes] keeping clusters ${a.name}, ${b.name}\n`);
      return;
    }
    await cluster("down", a.name);
    await cluster("down", b.name);
  };
}
