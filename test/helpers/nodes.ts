// Helpers for suites on clusters with a real node (hack/cluster.sh up NAME --node).
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { getJson, kc, kubectl, ROOT, until } from "./k8s.ts";
import { freePort } from "./agents.ts";

type Any = Record<string, any>;

/**
 * A relay (it holds no token) on `host`, an address of this machine that the clusters' pods
 * route to (a node cluster's HOST_IP); `peers` is the ENTANGLE_PEERS value that names it.
 */
export async function startRelay(host: string): Promise<{ peers: string; relay: ChildProcess }> {
  const peers = `${host}:${await freePort(host)}`;
  const relay = spawn(join(ROOT, "node_modules/.bin/node"), ["bin/entangle.js", "agent", "relay", "--p2p-listen", peers], {
    cwd: ROOT,
    stdio: "ignore",
  });
  return { peers, relay };
}

function readyCondition(obj: Any): Any | undefined {
  return (obj.status?.conditions ?? []).find((c: Any) => c.type === "Ready");
}

/** Polls `ref` (an Entanglement or Manifests) until its Ready condition is True; the object. */
export async function waitReady(kubeconfig: string, ref: string, ms = 120_000): Promise<Any> {
  return until(
    `${ref} Ready`,
    async () => {
      const o = await getJson(kubeconfig, [ref]);
      return readyCondition(o)?.status === "True" && o;
    },
    ms,
  );
}

/** A busybox command line. */
export function sh(script: string): string[] {
  return ["sh", "-c", script];
}

/**
 * An HTTP/1.0 GET by busybox nc (its wget crashes) in a fresh pod, as a local client would send
 * it (`Host: localhost`: `kubectl proxy` refuses other hosts); the response body.
 */
export async function httpGetFromPod(kubeconfig: string, name: string, ip: string, port: number, path: string): Promise<string> {
  const request = `GET ${path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n`;
  // stdin stays open: nc would half-close, and Go servers (kubectl proxy) cancel the request then
  const script = `(printf '${request}'; sleep 10) | nc -w 10 ${ip} ${port} >/tmp/r; head -n 1 /tmp/r | grep -q ' 200 ' && cat /tmp/r`;
  const response = await runOnce(kubeconfig, name, "busybox:1.28", sh(script));
  // the pod log keeps lines, not their carriage returns
  const blank = /\r?\n\r?\n/.exec(response);
  if (!blank) throw new Error(`no HTTP body in ${JSON.stringify(response.slice(0, 200))}`);
  return response.slice(blank.index + blank[0].length);
}

/** A web server on the node itself: busybox httpd in a hostNetwork pod serving `body` at `/`. */
export function nodeWebPod(nodeIP: string, port: number, body: string): string {
  const script = `mkdir -p /www && echo "${body}" > /www/index.html && exec httpd -f -p ${nodeIP}:${port} -h /www`;
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "node-web" },
    spec: { hostNetwork: true, containers: [{ name: "web", image: "busybox:1.28", command: sh(script) }] },
  });
}

/** The log of a pod's first container, or "" while it has none. */
export async function podLog(kubeconfig: string, pod: string, namespace = "default"): Promise<string> {
  const r = await kubectl(kubeconfig, ["logs", pod, "-n", namespace]);
  return r.code === 0 ? r.stdout : "";
}

/**
 * Runs `command` in a fresh pod until it succeeds (a new pod per try: the path it checks may
 * take a few seconds to come up) and returns its log.
 */
export async function runOnce(kubeconfig: string, name: string, image: string, command: string[], ms = 120_000): Promise<string> {
  const deadline = Date.now() + ms;
  let last = "";
  for (let attempt = 1; ; attempt++) {
    const pod = `${name}-${attempt}`;
    await kc(
      kubeconfig,
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: pod },
        spec: { restartPolicy: "Never", containers: [{ name: "run", image, command }] },
      }),
    );
    const phase = await until(
      `pod ${pod} finished`,
      async () => {
        const p = await getJson(kubeconfig, ["pod", pod]);
        return ["Succeeded", "Failed"].includes(p.status.phase) && p.status.phase;
      },
      Math.max(deadline - Date.now(), 10_000),
    );
    last = await podLog(kubeconfig, pod);
    await kubectl(kubeconfig, ["delete", "pod", pod, "--wait=false"]);
    if (phase === "Succeeded") return last;
    if (Date.now() > deadline) throw new Error(`${command.join(" ")} in ${image} kept failing; last log:\n${last}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function findPodCgroup(root: string, uid: string, depth = 0): string | undefined {
  if (depth > 6) return undefined;
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    if (entry.name === `pod${uid}` || entry.name === `pod${uid.replaceAll("-", "_")}`) return dir;
    const found = findPodCgroup(dir, uid, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Host PIDs of a pod's container (nodes share this machine's PID namespace). */
export async function containerPids(kubeconfig: string, pod: string, container: string): Promise<number[]> {
  const p = await getJson(kubeconfig, ["pod", pod]);
  const statuses: Any[] = [...(p.status.containerStatuses ?? []), ...(p.status.initContainerStatuses ?? [])];
  const id = String(statuses.find((c) => c.name === container)?.containerID ?? "").replace(/^\w+:\/\//, "");
  if (!id) throw new Error(`pod ${pod} has no running container ${container}`);
  const podDir = findPodCgroup("/sys/fs/cgroup/pids", p.metadata.uid);
  if (!podDir) throw new Error(`no pids cgroup for pod ${pod}`);
  return readFileSync(join(podDir, id, "cgroup.procs"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map(Number);
}

const MI = 1024 * 1024;

function toMib(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)?$/.exec(quantity);
  if (!m) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : m[2] === "Mi" ? 1 : 1 / MI);
}

/** Peak memory (cgroup v1 max_usage) of every dedicated agent pod, with its limit. */
export async function agentPeakRss(kubeconfig: string): Promise<{ pod: string; mib: number; limitMib: number }[]> {
  const pods = await getJson(kubeconfig, ["pods", "-l", "app.kubernetes.io/name=entangle-agent"]);
  return pods.items.map((p: Any) => {
    const dir = findPodCgroup("/sys/fs/cgroup/memory", p.metadata.uid);
    if (!dir) throw new Error(`no memory cgroup for pod ${p.metadata.name}`);
    const bytes = Number(readFileSync(join(dir, "memory.max_usage_in_bytes"), "utf8"));
    const agent = p.spec.containers.find((c: Any) => c.name === "entangle-agent");
    return { pod: p.metadata.name, mib: Math.round(bytes / MI), limitMib: toMib(agent.resources.limits.memory) };
  });
}
