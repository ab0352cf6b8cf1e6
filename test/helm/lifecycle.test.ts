// The Helm chart with the real Helm on a cluster with a real node: install, upgrade with changed
// values, uninstall, with the README's commands. The file makes its own cluster (no globalSetup:
// running this project alone starts nothing else) and a host relay for the agents.
//
// Install is `hack/deploy.sh NAME --helm` (images imported into the node, then the README's
// `helm install`); the seed's managed cluster and its Entanglement and Manifests then run in this
// one cluster (the tunnel from the Entanglement's Service to the kubectl proxy behind the sidecar,
// the Manifests' Pod through it). An upgrade must roll both Deployments while Pod creation keeps
// being admitted and leave every CR and what it made in place; uninstall must remove what the
// release installed and nothing else.
//   ENTANGLE_HELM_CLUSTER=NAME   the cluster's name (default nh)
//   ENTANGLE_KEEP_CLUSTER=1      leave it running
import type { ChildProcess } from "node:child_process";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cluster, clusterUp } from "../helpers/cluster.ts";
import { getJson, kc, kubectl, run, until } from "../helpers/k8s.ts";
import { httpGetFromPod, podLog, startRelay, waitReady } from "../helpers/nodes.ts";
import { seedText } from "../helpers/seed.ts";

type Any = Record<string, any>;

const NAME = process.env.ENTANGLE_HELM_CLUSTER || "nh";
const NS = "pepr-system";
const DEPLOYMENTS = ["pepr-entangle", "pepr-entangle-watcher"];
const CRDS = ["entanglements.entangle.kairos.io", "manifests.entangle-proxy.kairos.io"];

let kubeconfig = "";
let helmBin = "";
let relay: ChildProcess | undefined;
let peers = "";
let token = "";

/** helm against this file's cluster; must succeed. */
async function helm(args: string[], timeoutMs = 360_000): Promise<string> {
  const r = await run(helmBin, ["--kubeconfig", kubeconfig, ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`helm ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function uid(ref: string): Promise<string> {
  return (await kc(kubeconfig, ["get", ref, "-o", "jsonpath={.metadata.uid}"])).trim();
}

/** Both module Deployments rolled out to their current spec, every replica Ready. */
async function rolledOut(): Promise<void> {
  for (const d of DEPLOYMENTS) await kc(kubeconfig, ["-n", NS, "rollout", "status", `deployment/${d}`, "--timeout=180s"]);
}

function envOf(deployment: Any): Record<string, string> {
  return Object.fromEntries((deployment.spec.template.spec.containers[0].env ?? []).map((e: Any) => [e.name, e.value]));
}

/** The A-side API answer through the Entanglement's Service: the tunnel works end to end. */
async function apiThroughTunnel(podName: string): Promise<Any> {
  const ip = (await kc(kubeconfig, ["get", "service", "test", "-o", "jsonpath={.spec.clusterIP}"])).trim();
  return JSON.parse(await httpGetFromPod(kubeconfig, podName, ip, 8080, "/api"));
}

beforeAll(async () => {
  // A cold machine builds the node binaries here (the nodes project's globalSetup does it first
  // in a full run) and helm: no hook timeout that a cold build could hit.
  helmBin = (await cluster("helm")).match(/^HELM=(.*)$/m)?.[1] ?? "";
  expect(helmBin).not.toBe("");
  const v = await clusterUp(NAME, "--node");
  kubeconfig = v.KUBECONFIG;
  if (!v.HOST_IP) throw new Error(`hack/cluster.sh up ${NAME} --node printed no HOST_IP`);
  ({ peers, relay } = await startRelay(v.HOST_IP));
  token = (await run("node_modules/.bin/node", ["bin/entangle.js", "token", "new"])).stdout.trim().split("\n").pop() ?? "";
  expect(token.length).toBeGreaterThan(40);
}, 3_600_000);

afterAll(async () => {
  relay?.kill("SIGTERM");
  if (process.env.ENTANGLE_KEEP_CLUSTER === "1") {
    process.stderr.write(`[helm] keeping cluster ${NAME}: KUBECONFIG=${kubeconfig}\n`);
    return;
  }
  await cluster("down", NAME);
}, 120_000);

describe.sequential("the Helm chart on a real node", () => {
  const uids: Record<string, string> = {};

  it("hack/deploy.sh --helm (helm install) brings the module up: pods Ready, CRDs installed, webhooks serving", async () => {
    const t0 = Date.now();
    const r = await run("bash", ["hack/deploy.sh", NAME, "--helm"], { env: { ENTANGLE_PEERS: peers }, timeoutMs: 900_000 });
    if (r.code !== 0) throw new Error(`hack/deploy.sh ${NAME} --helm failed (${r.code}):\n${r.stdout}\n${r.stderr.slice(-4000)}`);
    console.log(`[helm] deploy.sh --helm: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    expect(r.stderr).toMatch(/helm install entangle dist\/entangle-chart/);

    const status = JSON.parse(await helm(["status", "entangle", "-o", "json"]));
    expect(status.info.status).toBe("deployed");
    for (const d of DEPLOYMENTS) {
      const dep = await getJson(kubeconfig, ["-n", NS, "deployment", d]);
      expect(dep.status.readyReplicas).toBe(dep.spec.replicas);
      expect(dep.metadata.annotations["meta.helm.sh/release-name"]).toBe("entangle");
      expect(envOf(dep)).toMatchObject({ ENTANGLE_PEERS: peers, LOG_LEVEL: "info" });
    }
    for (const crd of CRDS) await kc(kubeconfig, ["wait", "--for=condition=Established", "--timeout=30s", `crd/${crd}`]);

    // The mutating webhook serves: the seed's managed-cluster Deployment gets its sidecar.
    await kc(kubeconfig, ["apply", "-f", "-"], seedText("managed-cluster", token));
    await kc(kubeconfig, ["rollout", "status", "deployment/agent-proxy", "--timeout=150s"]);
    const pods = await getJson(kubeconfig, ["pods", "-l", "app=agent-proxy"]);
    expect((pods.items[0].spec.initContainers ?? []).map((c: Any) => c.name)).toContain("entangle-agent");
  });

  it("an Entanglement and a Manifests CR work through the Helm-installed module", async () => {
    await kc(kubeconfig, ["apply", "-f", "-"], seedText("inbound-entanglement-cluster-b", token));
    await waitReady(kubeconfig, "entanglement/test");
    expect((await apiThroughTunnel("api-before")).kind).toBe("APIVersions");
    await kc(kubeconfig, ["apply", "-f", "-"], seedText("control-manifests", token));
    await waitReady(kubeconfig, "manifests/hello");
    expect(await until("Pod test's log", () => podLog(kubeconfig, "test"), 120_000)).toContain("Hello, ssaa!");
    for (const ref of ["entanglement/test", "manifests/hello", "deployment/entangle-test", "service/test", "pod/test", "deployment/agent-proxy"])
      uids[ref] = await uid(ref);
  });

  it("helm upgrade with changed values rolls both Deployments, keeps admitting Pods, loses no CR and nothing they made", async () => {
    const before: Record<string, number> = {};
    for (const d of DEPLOYMENTS) before[d] = (await getJson(kubeconfig, ["-n", NS, "deployment", d])).metadata.generation;

    // Pod creation during the roll: a server-side dry run goes through both webhooks
    // (failurePolicy Fail) without creating anything. Bounded: at most 600 tries, 2 per second.
    const probe = JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "probe", namespace: "default" },
      spec: { containers: [{ name: "c", image: "busybox:1.28", command: ["true"] }] },
    });
    let rolling = true;
    const refused: string[] = [];
    let admitted = 0;
    const prober = (async () => {
      for (let i = 0; rolling && i < 600; i++) {
        const r = await kubectl(kubeconfig, ["create", "--dry-run=server", "-o", "name", "-f", "-"], probe);
        if (r.code === 0) admitted++;
        else refused.push(r.stderr.trim());
        await new Promise((res) => setTimeout(res, 500));
      }
    })();
    const t0 = Date.now();
    try {
      // the README's upgrade command
      await helm([
        "upgrade",
        "entangle",
        "dist/entangle-chart",
        "--reset-then-reuse-values",
        "--set",
        "logLevel=debug",
        "--set",
        "agent.logLevel=debug",
        "--wait",
        "--timeout",
        "5m",
      ]);
      await rolledOut();
    } finally {
      rolling = false;
      await prober;
    }
    console.log(`[helm] upgrade rolled in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${admitted} Pod creations admitted, ${refused.length} refused`);
    expect(refused).toEqual([]);
    expect(admitted).toBeGreaterThan(5);

    for (const d of DEPLOYMENTS) {
      const dep = await getJson(kubeconfig, ["-n", NS, "deployment", d]);
      expect(dep.metadata.generation).toBeGreaterThan(before[d]);
      // --reset-then-reuse-values: the changed values on top of the ones given at install
      expect(envOf(dep)).toMatchObject({ LOG_LEVEL: "debug", ENTANGLE_AGENT_LOG_LEVEL: "debug", ENTANGLE_PEERS: peers });
    }
    for (const [ref, id] of Object.entries(uids)) expect(await uid(ref), ref).toBe(id);
    await waitReady(kubeconfig, "entanglement/test");
    await waitReady(kubeconfig, "manifests/hello");
    expect((await apiThroughTunnel("api-after")).kind).toBe("APIVersions");
  });

  it("helm uninstall removes what the release installed, and leaves the CRDs and the users' CRs", async () => {
    const installed = (yaml.loadAll(await helm(["get", "manifest", "entangle"])) as (Any | null)[])
      .filter((d): d is Any => !!d)
      .map((d) => ({ kind: d.kind as string, name: d.metadata.name as string }));
    expect(installed.map((o) => o.kind)).toEqual(expect.arrayContaining(["Deployment", "MutatingWebhookConfiguration", "ClusterRole", "Namespace"]));

    await helm(["uninstall", "entangle", "--wait", "--timeout", "2m"]);
    const left: string[] = [];
    for (const o of installed) {
      const r = await kubectl(kubeconfig, ["get", `${o.kind}/${o.name}`, "-n", NS, "--ignore-not-found", "-o", "name"]);
      if (r.code !== 0 || r.stdout.trim() !== "") left.push(`${o.kind}/${o.name}: ${r.stdout.trim() || r.stderr.trim()}`);
    }
    expect(left).toEqual([]);
    expect((await run(helmBin, ["--kubeconfig", kubeconfig, "status", "entangle"])).code).not.toBe(0);
    for (const crd of CRDS) expect(await uid(`crd/${crd}`)).not.toBe("");
    expect(await uid("entanglement/test")).toBe(uids["entanglement/test"]);
    expect(await uid("manifests/hello")).toBe(uids["manifests/hello"]);

    // The README's removal of what is left: the CRs' finalizers (nothing runs them any more), the CRDs.
    for (const ref of ["entanglement/test", "manifests/hello"]) await kc(kubeconfig, ["patch", ref, "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    await kc(kubeconfig, ["delete", "--timeout=60s", "-f", "dist/entangle-crds.yaml"]);
    expect((await kubectl(kubeconfig, ["get", "entanglements", "-A"])).code).not.toBe(0);
  });
});
