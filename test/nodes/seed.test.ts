// The seed document's examples on real pods: two clusters with a real node each and Entangle
// installed in-cluster (test/nodes/clusters.global.ts). Cluster A is the managed cluster (the
// seed's kubectl-proxy Deployment with entangle labels, its sidecar injected by the module);
// cluster B reaches A's API through the seed's inbound Entanglement and controls A with the
// seed's Manifests CR. Figures (seconds, peak memory) are printed, never asserted.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { getJson, kc, kubectl, run, until } from "../helpers/k8s.ts";
import { seedText } from "../helpers/seed.ts";
import { agentPeakRss, containerPids, httpGetFromPod, nodeWebPod, podLog, runOnce, sh, waitReady } from "../helpers/nodes.ts";

const { a, b } = inject("clusters");
type Any = Record<string, any>;

let token = "";

beforeAll(async () => {
  // A kept cluster (ENTANGLE_KEEP_CLUSTER=1) keeps its token: running pods read it at start.
  const existing = await kubectl(a.kubeconfig, ["get", "secret", "mysecret", "-o", "jsonpath={.data.network_token}"]);
  if (existing.code === 0 && existing.stdout) token = Buffer.from(existing.stdout, "base64").toString("utf8");
  else token = (await run("node_modules/.bin/node", ["bin/entangle.js", "token", "new"])).stdout.trim().split("\n").pop() ?? "";
  expect(token.length).toBeGreaterThan(40);
  await kc(a.kubeconfig, ["apply", "-f", "-"], seedText("managed-cluster", token));
  await kc(b.kubeconfig, ["apply", "-f", "-"], seedText("inbound-entanglement-cluster-b", token));
}, 60_000);

describe("managed cluster A reached from cluster B", () => {
  it("the seed's kubectl proxy Deployment runs with the injected sidecar, Ready", async () => {
    await kc(a.kubeconfig, ["rollout", "status", "deployment/agent-proxy", "--timeout=150s"]);
    const pods = await getJson(a.kubeconfig, ["pods", "-l", "app=agent-proxy"]);
    const pod = pods.items[0];
    const sidecar = (pod.spec.initContainers ?? []).find((c: Any) => c.name === "entangle-agent");
    expect(sidecar?.restartPolicy).toBe("Always");
    const status = (pod.status.initContainerStatuses ?? []).find((c: Any) => c.name === "entangle-agent");
    expect(status?.started).toBe(true);
    expect(pod.status.containerStatuses[0].ready).toBe(true);
  });

  it("a pod in B gets A's APIVersions through the inbound Entanglement's ClusterIP", async () => {
    const t0 = Date.now();
    const ent = await waitReady(b.kubeconfig, "entanglement/test");
    expect(ent.status.observedGeneration).toBe(ent.metadata.generation);
    const ip = (await kc(b.kubeconfig, ["get", "service", "test", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    const versions = JSON.parse(await httpGetFromPod(b.kubeconfig, "get-api", ip, 8080, "/api"));
    expect(versions.kind).toBe("APIVersions");
    // A's API server answers (through A's kubectl proxy and its ServiceAccount): A's pods
    const pods = JSON.parse(await httpGetFromPod(b.kubeconfig, "get-pods", ip, 8080, "/api/v1/namespaces/default/pods"));
    expect(pods.items.map((p: Any) => p.metadata.name).join(" ")).toMatch(/agent-proxy-/);
    console.log(`[nodes] B pod -> tunnel -> A's API: ${((Date.now() - t0) / 1000).toFixed(1)} s from Entanglement Ready wait to answer`);
  });

  it("the seed's Manifests CR in B creates Pod test in A, which runs busybox; deleting the CR deletes it", async () => {
    await kc(b.kubeconfig, ["apply", "-f", "-"], seedText("control-manifests", token));
    await waitReady(b.kubeconfig, "manifests/hello");
    const log = await until("Pod test's log in A", () => podLog(a.kubeconfig, "test"), 120_000);
    expect(log).toContain("Hello, ssaa!");
    await kc(b.kubeconfig, ["delete", "manifests", "hello", "--timeout=90s"]);
    await until(
      "Pod test deleted in A",
      async () => {
        const r = await kubectl(a.kubeconfig, ["get", "pod", "test", "--ignore-not-found", "-o", "name"]);
        return r.code === 0 && r.stdout.trim() === "";
      },
      90_000,
    );
  });

  it("kubectl describe shows the Ready condition and Events", async () => {
    const out = await kc(b.kubeconfig, ["describe", "entanglement", "test"]);
    console.log(`[nodes] kubectl describe entanglement test:\n${out}`);
    expect(out).toMatch(/Type:\s+Ready/);
    expect(out).toMatch(/Events:[\s\S]*Normal/);
  });
});

describe("the seed's outbound Entanglement with hostNetwork", () => {
  it("reaches a service on node A from a pod in B", async () => {
    // A service on the node: busybox httpd in a hostNetwork pod, on the node's address.
    await kc(a.kubeconfig, ["apply", "-f", "-"], nodeWebPod(a.nodeIP, 8088, "hello-from-node"));
    // The seed's example as written, but for its host (an address on the user's LAN there; the
    // node here: nothing of ours may send to 192.168.1.1) and the port of the service above.
    await kc(
      a.kubeconfig,
      ["apply", "-f", "-"],
      seedText("outbound-entanglement", token).replace("192.168.1.1", a.nodeIP).replace('port: "80"', 'port: "8088"'),
    );
    await kc(b.kubeconfig, ["apply", "-f", "-"], seedText("inbound-entanglement", token));
    const dep = await until(
      "Deployment for test2",
      async () => (await getJson(a.kubeconfig, ["deployments", "-l", "entangle.kairos.io/entanglement=test2"])).items[0],
      60_000,
    );
    expect(dep.spec.template.spec.hostNetwork).toBe(true);
    await waitReady(a.kubeconfig, "entanglement/test2");
    await waitReady(b.kubeconfig, "entanglement/test3");
    const ip = (await kc(b.kubeconfig, ["get", "service", "test3", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    const out = await runOnce(b.kubeconfig, "get-node-web", "busybox:1.28", sh(`printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc ${ip} 8080`));
    expect(out).toContain("hello-from-node");
  });
});

describe("agent pods", () => {
  it("stay within their limits (peak RSS per pod is reported)", async () => {
    for (const c of [a, b]) {
      const peaks = await agentPeakRss(c.kubeconfig);
      console.log(`[nodes] ${c.name} agent pods' peak memory: ${peaks.map((p) => `${p.pod} ${p.mib} MiB (limit ${p.limitMib})`).join(", ")}`);
      for (const p of peaks) expect(p.mib).toBeLessThan(p.limitMib);
    }
  });

  it("a killed agent pod is replaced and the tunnel resumes", async () => {
    const pods = await getJson(b.kubeconfig, ["pods", "-l", "entangle.kairos.io/entanglement=test"]);
    expect(pods.items.length).toBe(1);
    const t0 = Date.now();
    await kc(b.kubeconfig, ["delete", "pod", pods.items[0].metadata.name, "--grace-period=0", "--force", "--wait=false"]);
    const ip = (await kc(b.kubeconfig, ["get", "service", "test", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    expect(JSON.parse(await httpGetFromPod(b.kubeconfig, "get-api-again", ip, 8080, "/api")).kind).toBe("APIVersions");
    console.log(`[nodes] agent pod killed -> tunnel answering again: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  it("a stuck agent is restarted by its liveness probe and serves again", async () => {
    const pods = await getJson(b.kubeconfig, ["pods", "-l", "entangle.kairos.io/entanglement=test"]);
    const pod = pods.items.find((p: Any) => !p.metadata.deletionTimestamp && p.status.phase === "Running");
    const restarts = pod.status.containerStatuses[0].restartCount as number;
    const t0 = Date.now();
    for (const pid of await containerPids(b.kubeconfig, pod.metadata.name, "entangle-agent")) process.kill(pid, "SIGSTOP");
    await until(
      "the stopped agent restarted",
      async () => (await getJson(b.kubeconfig, ["pod", pod.metadata.name])).status.containerStatuses[0].restartCount > restarts,
      120_000,
    );
    const ip = (await kc(b.kubeconfig, ["get", "service", "test", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    expect(JSON.parse(await httpGetFromPod(b.kubeconfig, "get-api-unstuck", ip, 8080, "/api")).kind).toBe("APIVersions");
    console.log(`[nodes] agent stopped (SIGSTOP) -> restarted by liveness and answering: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
