// Real nodes (hack/cluster.sh up NAME --node): two clusters, each with one node in its own network
// namespace. Pods run, log, serve through ClusterIP Services, reach their own API server with their
// ServiceAccount token, reach the other cluster's pods and the host; images come only from the
// node's local registry, so a missing one fails fast.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { getJson, kc, kubectl, ROOT, until } from "../helpers/k8s.ts";

const NS = "node-test";
const BUSYBOX = "busybox:1.28";
const hasRegistry = existsSync(join(ROOT, "hack/registry.ts"));

type Any = Record<string, any>;

function pod(name: string, image: string, command: string[], extra: Any = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "main", image, command, ...extra }],
    },
  });
}

async function apply(kubeconfig: string, manifest: string): Promise<void> {
  await kc(kubeconfig, ["apply", "-f", "-"], manifest);
}

async function podStatus(kubeconfig: string, name: string): Promise<Any> {
  return (await getJson(kubeconfig, ["pod", name, "-n", NS])).status ?? {};
}

function running(kubeconfig: string, name: string, ms = 60_000): Promise<Any> {
  return until(
    `pod ${name} Running`,
    async () => {
      const s = await podStatus(kubeconfig, name);
      return s.phase === "Running" && s.podIP && s;
    },
    ms,
  );
}

/** A shell command inside a running pod; its stdout. */
async function sh(kubeconfig: string, name: string, script: string): Promise<string> {
  return kc(kubeconfig, ["exec", "-n", NS, name, "--", "sh", "-c", script]);
}

/** busybox httpd answering every GET with `body`. */
const web = (name: string, body: string): string =>
  pod(name, BUSYBOX, ["sh", "-c", `mkdir -p /www && echo ${body} >/www/index.html && exec httpd -f -p 8080 -h /www`]);

/** HTTP GET through busybox nc (its wget crashes): the response body's last line. */
const httpGet = (ip: string, port: number): string => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} ${port} | tail -n 1`;

describe("real nodes", () => {
  // clusters.global.ts: cluster "na" and "nb", each with a node
  const { a: na, b: nb } = inject("clusters");

  beforeAll(async () => {
    for (const c of [na, nb]) {
      // a previous run's namespace may still be terminating (ENTANGLE_KEEP_CLUSTER=1)
      await kubectl(c.kubeconfig, ["delete", "namespace", NS, "--ignore-not-found", "--timeout=60s"]);
      await kc(c.kubeconfig, ["create", "namespace", NS]);
      await until("default ServiceAccount", () => kc(c.kubeconfig, ["get", "serviceaccount", "default", "-n", NS]));
      // one long-running client per cluster for exec
      await apply(c.kubeconfig, pod("client", BUSYBOX, ["sleep", "3600"]));
    }
  });

  afterAll(async () => {
    for (const c of [na, nb]) await kubectl(c.kubeconfig, ["delete", "namespace", NS, "--wait=false"]);
  });

  it("each node is Ready with its own IP", async () => {
    for (const c of [na, nb]) {
      const nodes = (await getJson(c.kubeconfig, ["nodes"])).items as Any[];
      expect(nodes).toHaveLength(1);
      const ready = nodes[0].status.conditions.find((x: Any) => x.type === "Ready");
      expect(ready.status).toBe("True");
      expect(nodes[0].status.addresses).toContainEqual({ type: "InternalIP", address: c.nodeIP });
    }
    expect(na.nodeIP).not.toBe(nb.nodeIP);
  });

  it("a busybox pod runs and kubectl logs reads its output", async () => {
    await apply(na.kubeconfig, pod("hello", BUSYBOX, ["sh", "-c", "echo hello from $(hostname)"]));
    await until("pod hello Succeeded", async () => (await podStatus(na.kubeconfig, "hello")).phase === "Succeeded", 60_000);
    expect(await kc(na.kubeconfig, ["logs", "-n", NS, "hello"])).toBe("hello from hello\n");
  });

  it("a ClusterIP Service reaches its pod", async () => {
    await apply(na.kubeconfig, web("web", "web-in-na"));
    await running(na.kubeconfig, "web");
    await kc(na.kubeconfig, ["expose", "pod", "web", "-n", NS, "--port", "80", "--target-port", "8080"]);
    const ip = (await getJson(na.kubeconfig, ["service", "web", "-n", NS])).spec.clusterIP as string;
    expect(ip).toMatch(/^10\.96\./);
    await running(na.kubeconfig, "client");
    // kube-proxy programs the rule within its minSyncPeriod
    const body = await until("web through its ClusterIP", async () => (await sh(na.kubeconfig, "client", httpGet(ip, 80))).trim());
    expect(body).toBe("web-in-na");
  });

  it("a pod reaches its API server through the kubernetes ClusterIP with its ServiceAccount token", async () => {
    // kubectl's in-cluster config: 10.96.0.1:443 from KUBERNETES_SERVICE_HOST/PORT, the mounted
    // ServiceAccount token and CA (busybox has no TLS client).
    await apply(na.kubeconfig, pod("api", "quay.io/kairos/kubectl:latest", ["/usr/bin/kubectl", "get", "--raw", "/api"]));
    await until("pod api Succeeded", async () => {
      const s = await podStatus(na.kubeconfig, "api");
      if (s.phase === "Failed") throw new Error(`pod api failed: ${await kc(na.kubeconfig, ["logs", "-n", NS, "api"])}`);
      return s.phase === "Succeeded";
    });
    const api = JSON.parse(await kc(na.kubeconfig, ["logs", "-n", NS, "api"]));
    expect(api.kind).toBe("APIVersions");
    expect(api.versions).toContain("v1");
  });

  it("a pod in one cluster reaches a pod IP in the other", async () => {
    await apply(nb.kubeconfig, web("web", "web-in-nb"));
    const { podIP } = await running(nb.kubeconfig, "web");
    expect(podIP).not.toBe((await podStatus(na.kubeconfig, "client")).podIP);
    await running(na.kubeconfig, "client");
    const body = await until("nb's pod from na", async () => (await sh(na.kubeconfig, "client", httpGet(podIP, 8080))).trim());
    expect(body).toBe("web-in-nb");
  });

  describe("the host", () => {
    let server: Server;
    beforeAll(async () => {
      server = createServer((s) => s.end("hello-from-host\n"));
      await new Promise<void>((resolve) => server.listen(0, na.hostIP, resolve));
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("is reached by pods at HOST_IP", async () => {
      const port = (server.address() as { port: number }).port;
      await running(na.kubeconfig, "client");
      expect((await sh(na.kubeconfig, "client", `nc -w 5 ${na.hostIP} ${port}`)).trim()).toBe("hello-from-host");
    });
  });

  it.skipIf(!hasRegistry)("imagePullPolicy Always pulls an image the local registry has", async () => {
    await apply(nb.kubeconfig, pod("always", BUSYBOX, ["echo", "pulled"], { imagePullPolicy: "Always" }));
    await until("pod always Succeeded", async () => (await podStatus(nb.kubeconfig, "always")).phase === "Succeeded", 60_000);
    expect(await kc(nb.kubeconfig, ["logs", "-n", NS, "always"])).toBe("pulled\n");
  });

  it("an image nobody has fails fast with ErrImagePull, without leaving the machine", async () => {
    const t0 = Date.now();
    await apply(nb.kubeconfig, pod("missing", "registry.example.invalid/nothing/here:0.0", ["true"], { imagePullPolicy: "Always" }));
    const reason = await until(
      "pull error",
      async () => {
        const s = await podStatus(nb.kubeconfig, "missing");
        const r = s.containerStatuses?.[0]?.state?.waiting?.reason as string | undefined;
        return r && ["ErrImagePull", "ImagePullBackOff"].includes(r) && r;
      },
      20_000,
    );
    expect(reason).toMatch(/ErrImagePull|ImagePullBackOff/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
