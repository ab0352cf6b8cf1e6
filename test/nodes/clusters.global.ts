// vitest globalSetup for the `nodes` project: two clusters with a real node each
// (hack/cluster.sh up NAME --node: containerd, kubelet, kube-proxy in the cluster's own network
// namespace), a relay on the host that pods of both reach, and Entangle installed in each the
// way the README tells users to (hack/deploy.sh), its agents dialing that relay.
//
// Tests read `inject("clusters")` and `inject("peers")`.
//   ENTANGLE_KEEP_CLUSTER=1      leave both clusters running (the next run reuses them)
//   ENTANGLE_NODE_CLUSTERS=A,B   the clusters' names (default na,nb)
import type { TestProject } from "vitest/node";
import { cluster, clusterUp } from "../helpers/cluster.ts";
import { run } from "../helpers/k8s.ts";
import { startRelay } from "../helpers/nodes.ts";

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

/** ENTANGLE_NODE_CLUSTERS=A,B: other cluster names, so two runs can share the machine. */
function clusterNames(): { a: string; b: string } {
  const names = (process.env.ENTANGLE_NODE_CLUSTERS || "na,nb").split(",").map((s) => s.trim());
  if (names.length !== 2 || names.some((n) => !/^[a-z0-9][a-z0-9-]*$/.test(n)) || names[0] === names[1])
    throw new Error(`ENTANGLE_NODE_CLUSTERS must be two different cluster names A,B (got ${JSON.stringify(process.env.ENTANGLE_NODE_CLUSTERS)})`);
  return { a: names[0], b: names[1] };
}

async function up(name: string): Promise<NodeCluster> {
  const v = await clusterUp(name, "--node");
  if (!v.NODE_IP || !v.HOST_IP) throw new Error(`hack/cluster.sh up ${name} --node printed no NODE_IP/HOST_IP`);
  return { name, kubeconfig: v.KUBECONFIG, nodeIP: v.NODE_IP, hostIP: v.HOST_IP };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // One after the other: two cold `up`s on two cores only slow each other down.
  const names = clusterNames();
  const a = await up(names.a);
  const b = await up(names.b);

  // The relay holds no token; it listens on an address of this machine that both clusters' pods
  // route to (cluster A's host end; B's pods reach it through the host's forwarding).
  const { peers, relay } = await startRelay(a.hostIP);

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
