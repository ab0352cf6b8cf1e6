// npm run bench:controller: the controller at scale, on the fast tier (a real API server
// without a node, hack/cluster.sh; the module as a local process, hack/module.sh). Prints figures,
// asserts nothing. Bounded: N objects, every wait has a deadline.
//
//   node hack/bench-controller.ts [--cluster NAME] [--entanglements N] [--manifests M]
//                                 [--objects-per-manifest K] [--no-baseline] [--profile DIR] [--keep]
//                                 [--hold 30m] [--bundle]
//
// Entanglements (mixed inbound/outbound, Secrets they reference exist):
//   - `kubectl apply` of N CRs without the module (its webhooks unregistered), then with it
//   - the time from the end of that apply until every CR has status written for its current
//     generation (no node: agents never become available, so any Ready reason counts)
//   - the module's CPU time (/proc/PID/stat utime+stime) and RSS over the run
//   - the module's API requests (every request it makes, counted by hack/module/count-requests.ts):
//     per reconcile, writes apart; then a resync (the Secrets touched: every CR reconciled, none
//     changed), a module restart with N existing CRs, and one spec change
// Manifests (--manifests M, K objects each): a second control plane `<cluster>-managed` served by
// `entangle agent api-proxy` through a relay without the token (as test/e2e/manifests.test.ts);
// `kubectl apply` of M CRs of K ConfigMaps, then the time until every CR is Ready for its current
// generation, the module's CPU per object, the managed cluster's object count, and the module's
// API requests to its own cluster, and during resyncs the managed cluster's ConfigMap requests by
// verb (its /metrics).
//
// --hold DURATION (e.g. 30m): after everything converged, leave the module alone that long
// (resyncs only) and print its RSS every minute and the API requests it made (writes apart), and
// how many of the managed cluster's objects changed (their resourceVersions).
//
// --bundle: the module bundled into one file, as installed (hack/module/bundle.ts), instead of
// from the TypeScript sources.
// BENCH_MODULE_NODE_OPTIONS: Node options added to the module's (e.g. --max-semi-space-size=4).
//
// --profile DIR: CPU profiles and heap snapshots of the module (hack/module/profile.ts) when
// idle and after the Entanglements converged, in DIR.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { newToken } from "../lib/p2p/token.ts";
import { KUBECTL, ROOT, kubectl, moduleDown, moduleUp, run } from "../test/helpers/k8s.ts";
import { killAll, runEntangle } from "../test/helpers/agents.ts";
import { managedClusterAndRelay } from "../test/helpers/managed.ts";

// a failed step (e.g. the module not starting) must not leave the relay and the api-proxy running
for (const event of ["uncaughtException", "unhandledRejection"] as const)
  process.on(event, (err) => {
    console.error(err);
    void killAll().finally(() => process.exit(1));
  });

const { values: opts } = parseArgs({
  options: {
    cluster: { type: "string", default: "bench-controller" },
    entanglements: { type: "string", default: "1000" },
    manifests: { type: "string", default: "0" },
    "objects-per-manifest": { type: "string", default: "5" },
    "no-baseline": { type: "boolean", default: false },
    profile: { type: "string" },
    keep: { type: "boolean", default: false },
    hold: { type: "string" },
    bundle: { type: "boolean", default: false },
  },
});
const CLUSTER = opts.cluster!;
const N = Number(opts.entanglements);
const M = Number(opts.manifests);
const K = Number(opts["objects-per-manifest"]);
const NS = "bench-ent";
const NSM = "bench-man";
const NS_AGAIN = "bench-ent-again";
const SERVICE = "bench-managed";
const SECRETS = 10;
const STATE = process.env.ENTANGLE_STATE_DIR ?? "/tmp/entangle-clusters";
const WORK = resolve(`/tmp/entangle-bench-controller-${CLUSTER}`);
const REQUESTS = join(WORK, "requests.log");
const MEMORY = join(WORK, "memory.json");
const PROFILE = opts.profile ? resolve(opts.profile) : undefined;
const HOLD_MIN = opts.hold ? Number(/^(\d+(?:\.\d+)?)m?$/.exec(opts.hold)?.[1] ?? NaN) : 0;
if (Number.isNaN(HOLD_MIN) || HOLD_MIN > 120) throw new Error("--hold: minutes, e.g. 30m (at most 120)");
const TICK = 100; // clock ticks per second (getconf CLK_TCK on Linux)

rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
if (PROFILE) mkdirSync(PROFILE, { recursive: true });

const say = (line: string) => process.stdout.write(line + "\n");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;
/** What the module's RSS holds, as hack/module/memory.ts last wrote it (within a second). */
function heapParts(): string {
  try {
    const m = JSON.parse(readFileSync(MEMORY, "utf8"));
    const n = (bytes: number) => (bytes / 1048576).toFixed(0);
    const young = m.spaces.new_space?.size ?? 0;
    return ` [JS heap ${n(m.heapUsed)} used of ${n(m.heapTotal)} (young ${n(young)}), external ${n(m.external)} (buffers ${n(m.arrayBuffers)})]`;
  } catch {
    return "";
  }
}
/** RSS, with what it holds. */
const rssOf = (bytes: number) => `${mib(bytes)}${heapParts()}`;

async function clusterUp(name: string): Promise<string> {
  const r = await run("bash", ["hack/cluster.sh", "up", name], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout
    .trim()
    .split("\n")
    .pop()!
    .replace(/^KUBECONFIG=/, "");
}

const kcfg = await clusterUp(CLUSTER);
const k = (args: string[], input?: string) => kubectl(kcfg, args, input);
async function must(args: string[], input?: string): Promise<string> {
  const r = await kubectl(kcfg, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.slice(0, 3).join(" ")}: ${r.stderr}`);
  return r.stdout;
}

// ---- the module process: CPU, RSS, requests ------------------------------------------------
function modulePid(): number {
  return Number(readFileSync(join(STATE, CLUSTER, "module", "pid"), "utf8"));
}
function usage(pid: number): { cpuMs: number; rss: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / TICK; // utime, stime (fields 14, 15)
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
  return { cpuMs, rss };
}

/** CPU time (ms) of the cluster's own processes (hack/cluster.sh pids) and the module, for attribution. */
const PARTS = ["kube-apiserver", "etcd", "kube-controller-manager"] as const;
function partsCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of PARTS) {
    try {
      out[p] = usage(Number(readFileSync(join(STATE, CLUSTER, "pids", p), "utf8"))).cpuMs;
    } catch {
      out[p] = NaN;
    }
  }
  try {
    out.module = usage(modulePid()).cpuMs;
  } catch {
    out.module = 0;
  }
  // the Manifests' other end: the managed cluster and the api-proxy agent serving it
  if (M > 0) {
    for (const p of ["kube-apiserver", "etcd"])
      try {
        out[`managed ${p}`] = usage(Number(readFileSync(join(STATE, `${CLUSTER}-managed`, "pids", p), "utf8"))).cpuMs;
      } catch {
        out[`managed ${p}`] = NaN;
      }
    out["api-proxy"] = proxyPid === undefined ? NaN : usage(proxyPid).cpuMs;
  }
  return out;
}
/** The API server's counters so far (its /metrics): admission-webhook calls and seconds, and every request by "VERB resource[/subresource]". */
interface ApiCounters {
  calls: number;
  seconds: number;
  requests: Map<string, number>;
}
async function apiCounters(): Promise<ApiCounters> {
  const r = await k(["get", "--raw", "/metrics"]);
  const out: ApiCounters = { calls: 0, seconds: 0, requests: new Map() };
  for (const line of r.stdout.split("\n")) {
    if (line.startsWith("apiserver_admission_webhook_admission_duration_seconds_count")) out.calls += Number(line.split(" ").pop());
    if (line.startsWith("apiserver_admission_webhook_admission_duration_seconds_sum")) out.seconds += Number(line.split(" ").pop());
    if (line.startsWith("apiserver_request_total{")) {
      const label = (name: string) => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? "";
      const sub = label("subresource");
      const key = `${label("verb")} ${label("resource")}${sub ? "/" + sub : ""}`;
      out.requests.set(key, (out.requests.get(key) ?? 0) + Number(line.split(" ").pop()));
    }
  }
  return out;
}
/** Where the CPU went during an apply: each process's CPU seconds, the webhook calls, and what the API server served (everyone's requests). */
function showParts(before: Record<string, number>, c0: ApiCounters, c1: ApiCounters, wallMs: number): void {
  showCpu(before, wallMs, "the apply");
  say(`  admission webhook calls during the apply: ${c1.calls - c0.calls} (${(c1.seconds - c0.seconds).toFixed(2)} s in total)`);
  const served = [...c1.requests].map(([key, n]) => [key, n - (c0.requests.get(key) ?? 0)] as const).filter(([, n]) => n > 0);
  served.sort((a, b) => b[1] - a[1]);
  const total = served.reduce((sum, [, n]) => sum + n, 0);
  say(`  API server requests during the apply (all clients): ${total}: ${served.map(([key, n]) => `${key} ${n}`).join(", ")}`);
}

/** Each process's CPU seconds since `before` (partsCpu), over `wallMs` of `what`. */
function showCpu(before: Record<string, number>, wallMs: number, what: string): void {
  const after = partsCpu();
  const parts = Object.keys(after).map((p) => `${p} ${((after[p] - before[p]) / 1000).toFixed(1)}`);
  say(`  CPU s during ${what} (${(wallMs / 1000).toFixed(1)} s wall): ${parts.join(", ")}; load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`);
}

interface Requests {
  total: number;
  reads: number;
  writes: number;
  byKind: Record<string, number>;
}
function requestLines(): string[] {
  return existsSync(REQUESTS) ? readFileSync(REQUESTS, "utf8").split("\n").filter(Boolean) : [];
}
/** Requests since line `from`, by "VERB resource" (watches apart). */
function requestsSince(from: number): Requests {
  const lines = requestLines().slice(from);
  const byKind: Record<string, number> = {};
  let reads = 0;
  let writes = 0;
  for (const line of lines) {
    const [method, path] = line.split(" ");
    const url = new URL(path, "http://x");
    const parts = url.pathname.split("/").filter(Boolean);
    // /api/v1/namespaces/NS/RES[/NAME[/SUB]] or /apis/G/V/namespaces/NS/RES[/NAME[/SUB]]
    const base = parts[0] === "api" ? 2 : 3;
    const rest = parts[base] === "namespaces" && parts.length > base + 2 ? parts.slice(base + 2) : parts.slice(base);
    const resource = rest[0] + (rest[2] ? "/" + rest[2] : "");
    const verb = url.searchParams.get("watch") === "true" ? "WATCH" : method === "GET" && rest.length === 1 ? "LIST" : method;
    const key = `${verb} ${resource}`;
    byKind[key] = (byKind[key] ?? 0) + 1;
    if (method === "GET") reads++;
    else writes++;
  }
  return { total: lines.length, reads, writes, byKind };
}
function showRequests(r: Requests, per: number, what: string): void {
  say(`  requests: ${r.total} (${r.reads} reads, ${r.writes} writes) = ${(r.total / per).toFixed(1)} per ${what} (${(r.writes / per).toFixed(2)} writes)`);
  const kinds = Object.entries(r.byKind).sort((a, b) => b[1] - a[1]);
  say(`    ${kinds.map(([kk, v]) => `${kk} ${v}`).join(", ")}`);
}

/** Waits until the module made no request for `quietMs` (bounded by `maxMs`). */
async function quiet(quietMs = 4000, maxMs = 600_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = requestLines().length;
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(500);
    const now = requestLines().length;
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
  say(`  (still busy after ${maxMs / 1000} s)`);
}

async function startModule(): Promise<number> {
  const nodeOptions = ["--import ./hack/module/count-requests.ts", "--import ./hack/module/memory.ts"];
  if (PROFILE) nodeOptions.push("--import ./hack/module/profile.ts");
  // e.g. BENCH_MODULE_NODE_OPTIONS=--max-semi-space-size=4: the module under other V8 settings
  if (process.env.BENCH_MODULE_NODE_OPTIONS) nodeOptions.push(process.env.BENCH_MODULE_NODE_OPTIONS);
  await moduleUp(CLUSTER, {
    ENTANGLE_PROFILE_DIR: PROFILE ?? "",
    NODE_OPTIONS: nodeOptions.join(" "),
    ENTANGLE_REQUEST_LOG: REQUESTS,
    ENTANGLE_MEMORY_FILE: MEMORY,
    ENTANGLE_MODULE_BUNDLE: opts.bundle ? "1" : "",
    ENTANGLE_PEERS: relayAddr ?? "127.0.0.1:4001",
    ENTANGLE_P2P_LISTEN: "127.0.0.1:0",
    ENTANGLE_AGENT_IMAGE: "example.test/entangle:bench",
    LOG_LEVEL: "info",
  });
  return modulePid();
}

let snapshots = 0;
/** A CPU profile since the last one and a heap snapshot (hack/module/profile.ts), into --profile DIR. */
async function profile(pid: number, label: string): Promise<void> {
  if (!PROFILE) return;
  const i = snapshots++;
  rmSync(join(PROFILE, `${i}.done`), { force: true });
  process.kill(pid, "SIGUSR2");
  for (let t = 0; t < 300 && !existsSync(join(PROFILE, `${i}.done`)); t++) await sleep(1000);
  for (const ext of ["cpuprofile", "heapsnapshot"]) execFileSync("mv", [join(PROFILE, `${i}.${ext}`), join(PROFILE, `${label}.${ext}`)]);
  say(`  profile: ${join(PROFILE, label)}.{cpuprofile,heapsnapshot}`);
}

// ---- Entanglements --------------------------------------------------------------------------
const token = newToken();
function namespaceYaml(ns: string): string {
  const docs = [`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}`];
  for (let s = 0; s < SECRETS; s++)
    docs.push(`apiVersion: v1\nkind: Secret\nmetadata:\n  name: token-${s}\n  namespace: ${ns}\ntype: Opaque\nstringData:\n  network_token: "${token}"`);
  return docs.join("\n---\n") + "\n";
}
function entanglementsYaml(ns: string, n: number, port = 8080): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const common = `apiVersion: entangle.kairos.io/v1alpha1\nkind: Entanglement\nmetadata:\n  name: e${i}\n  namespace: ${ns}\nspec:\n  serviceUUID: "svc-${i}"\n  secretRef: "token-${i % SECRETS}"\n`;
    docs.push(
      i % 2 === 0
        ? common +
            `  host: "127.0.0.1"\n  port: "${port}"\n  inbound: true\n  serviceSpec:\n    ports:\n    - port: ${port}\n      protocol: TCP\n    type: ClusterIP\n`
        : common + `  host: "192.168.1.1"\n  port: "${port}"\n`,
    );
  }
  return docs.join("---\n");
}
async function applyTimed(yaml: string): Promise<number> {
  const file = join(WORK, "apply.yaml");
  writeFileSync(file, yaml);
  const cpu0 = partsCpu();
  const c0 = await apiCounters();
  const t0 = performance.now();
  const out = await run(KUBECTL, ["--kubeconfig", kcfg, "apply", "-f", file], {
    timeoutMs: 900_000,
  });
  const ms = performance.now() - t0;
  if (out.code !== 0) throw new Error(out.stderr.slice(0, 2000));
  showParts(cpu0, c0, await apiCounters(), ms);
  return ms;
}
async function deleteNamespace(ns: string): Promise<void> {
  // Manifests left by a run the module did not finish deleting keep their finalizer: lift it
  const left = (await k(["get", "manifests.entangle-proxy.kairos.io", "-n", ns, "-o", "name"])).stdout.split("\n").filter(Boolean);
  for (const cr of left) await k(["patch", cr, "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}']);
  await k(["delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=300s"]);
}
/** How many Entanglements have status written for their current generation. */
async function statusWritten(ns: string): Promise<number> {
  const out = await must([
    "get",
    "entanglements",
    "-n",
    ns,
    "-o",
    'jsonpath={range .items[*]}{.metadata.generation}/{.status.observedGeneration}/{.status.conditions[?(@.type=="Ready")].observedGeneration}{"\\n"}{end}',
  ]);
  return out.split("\n").filter((l) => {
    const [g, o, c] = l.split("/");
    return g && g === o && g === c;
  }).length;
}

say(
  `# bench:controller on cluster ${CLUSTER} (fast tier: API server without a node; the module ${opts.bundle ? "bundled" : "from its TypeScript sources"}), ${new Date().toISOString()}`,
);
say(`# machine: ${execFileSync("nproc").toString().trim()} cores, load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
await moduleDown(CLUSTER);
await deleteNamespace(NS);
await deleteNamespace(NSM);
await deleteNamespace(NS_AGAIN);
// the module applies its CRDs when it starts; the run without it needs them too
await must(["apply", "-f", join(ROOT, "lib/crds/crds.yaml")]);
await must(["wait", "--for=condition=Established", "crd/entanglements.entangle.kairos.io", "--timeout=60s"]);

// the managed side of the Manifests part: up before the module, which needs the relay's address
let managed: string | undefined;
let relayAddr: string | undefined;
let proxyPid: number | undefined;
if (M > 0) {
  ({ managed, relayAddr } = await managedClusterAndRelay(CLUSTER));
  await kubectl(managed, ["delete", "namespace", NSM, "--ignore-not-found", "--wait=true", "--timeout=300s"]);
  await kubectl(managed, ["create", "namespace", NSM]);
  const proxy = runEntangle(["agent", "api-proxy", "--service", SERVICE, "--kubeconfig", managed, "--p2p-listen", "127.0.0.1:0", "--peer", relayAddr], {
    ENTANGLE_NETWORK_TOKEN: token,
  });
  await proxy.waitMsg("agent started");
  proxyPid = proxy.child.pid;
}

let baselineMs: number | undefined;
if (!opts["no-baseline"] && N > 0) {
  await must(["apply", "-f", "-"], namespaceYaml(NS));
  baselineMs = await applyTimed(entanglementsYaml(NS, N));
  say(`\n## ${N} Entanglements, kubectl apply without the module: ${(baselineMs / 1000).toFixed(1)} s`);
  await deleteNamespace(NS);
}
let manifestsBaselineMs: number | undefined;
if (!opts["no-baseline"] && M > 0) {
  await must(["apply", "-f", "-"], namespaceYaml(NSM));
  manifestsBaselineMs = await applyTimed(manifestsYaml(NSM, M, K, "0"));
  say(`\n## ${M} Manifests, kubectl apply without the module: ${(manifestsBaselineMs / 1000).toFixed(1)} s`);
  await deleteNamespace(NSM);
}

let pid = await startModule();
if (N > 0) {
  say(`\n## ${N} Entanglements with the module`);
  await sleep(3000);
  await quiet(3000, 60_000);
  const idle = usage(pid);
  say(`  module idle: RSS ${rssOf(idle.rss)}, CPU ${(idle.cpuMs / 1000).toFixed(1)} s since start`);
  await profile(pid, "0-idle");
  await must(["apply", "-f", "-"], namespaceYaml(NS));
  const r0 = requestLines().length;
  const c0 = usage(pid);
  const applyMs = await applyTimed(entanglementsYaml(NS, N));
  const tApplied = performance.now();
  say(`  kubectl apply with the module: ${(applyMs / 1000).toFixed(1)} s${baselineMs ? ` (${(applyMs / baselineMs).toFixed(1)}x without)` : ""}`);
  let maxRss = 0;
  let done = 0;
  const deadline = Date.now() + 900_000;
  while (Date.now() < deadline) {
    maxRss = Math.max(maxRss, usage(pid).rss);
    done = await statusWritten(NS);
    if (done >= N) break;
    await sleep(1000);
  }
  const converged = (performance.now() - tApplied) / 1000;
  say(`  status written for the current generation: ${done}/${N}, ${converged.toFixed(1)} s after the end of kubectl apply`);
  await quiet();
  const c1 = usage(pid);
  maxRss = Math.max(maxRss, c1.rss);
  const cpu = c1.cpuMs - c0.cpuMs;
  say(
    `  module CPU: ${(cpu / 1000).toFixed(1)} s = ${(cpu / N).toFixed(1)} ms per Entanglement; RSS ${rssOf(c1.rss)} after (max ${mib(maxRss)}, idle ${mib(idle.rss)})`,
  );
  showRequests(requestsSince(r0), N, "Entanglement");
  await profile(pid, `1-${N}-entanglements`);

  // a resync: every Secret touched, so every Entanglement is reconciled and none has changed
  {
    const r = requestLines().length;
    const c = usage(pid);
    for (let s = 0; s < SECRETS; s++) await must(["annotate", "secret", `token-${s}`, "-n", NS, `bench/touched=${Date.now()}`, "--overwrite"]);
    await sleep(2000);
    await quiet();
    const d = usage(pid).cpuMs - c.cpuMs;
    say(`\n## resync (the ${SECRETS} Secrets touched: all ${N} Entanglements reconciled, nothing changed)`);
    say(`  module CPU: ${(d / 1000).toFixed(1)} s = ${(d / N).toFixed(1)} ms per Entanglement`);
    showRequests(requestsSince(r), N, "Entanglement");
    await profile(pid, "2-resync");
  }

  // a restart with N existing CRs: every one arrives as ADDED
  {
    await moduleDown(CLUSTER);
    if (baselineMs !== undefined) {
      // the run without the module again, now on a cluster holding what the module made: the
      // apply's time varies by 2x between runs here, so the ratio is given against both
      await must(["apply", "-f", "-"], namespaceYaml(NS_AGAIN));
      const againMs = await applyTimed(entanglementsYaml(NS_AGAIN, N));
      await deleteNamespace(NS_AGAIN);
      const mean = (baselineMs + againMs) / 2;
      say(`\n## ${N} Entanglements, kubectl apply without the module again (a namespace of its own): ${(againMs / 1000).toFixed(1)} s`);
      say(
        `  kubectl apply with the module: ${(applyMs / mean).toFixed(1)}x the mean of the runs without it (${(applyMs / baselineMs).toFixed(1)}x / ${(applyMs / againMs).toFixed(1)}x)`,
      );
    }
    const r = requestLines().length;
    const t0 = performance.now();
    pid = await startModule();
    snapshots = 0; // the new process numbers its profiles from 0
    await sleep(2000);
    await quiet();
    const u = usage(pid);
    say(`\n## module restart with ${N} existing Entanglements`);
    say(`  quiet ${((performance.now() - t0) / 1000).toFixed(1)} s after start; CPU ${(u.cpuMs / 1000).toFixed(1)} s since start, RSS ${rssOf(u.rss)}`);
    showRequests(requestsSince(r), N, "Entanglement");
    await profile(pid, "3-restart");
  }

  // one change
  {
    const r = requestLines().length;
    await must(["patch", "entanglement", "e1", "-n", NS, "--type", "merge", "-p", '{"spec":{"port":"9090"}}']);
    await sleep(1000);
    await quiet(3000, 60_000);
    say(`\n## one spec change`);
    showRequests(requestsSince(r), 1, "change");
  }
}

// ---- Manifests ------------------------------------------------------------------------------
function manifestsYaml(ns: string, m: number, k: number, value: string): string {
  const docs: string[] = [];
  for (let i = 0; i < m; i++) {
    const entries = Array.from(
      { length: k },
      (_, j) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m${i}-c${j}, namespace: ${ns}}\ndata: {value: "${value}"}\n`,
    );
    docs.push(
      JSON.stringify({
        apiVersion: "entangle-proxy.kairos.io/v1alpha1",
        kind: "Manifests",
        metadata: { name: `m${i}`, namespace: ns },
        spec: { serviceUUID: SERVICE, secretRef: "token-0", manifests: entries },
      }),
    );
  }
  return docs.join("\n---\n") + "\n";
}
/** How many Manifests are Ready for their current generation. */
async function manifestsReady(ns: string): Promise<number> {
  const out = await must([
    "get",
    "manifests.entangle-proxy.kairos.io",
    "-n",
    ns,
    "-o",
    'jsonpath={range .items[*]}{.metadata.generation}/{.status.observedGeneration}/{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
  ]);
  return out.split("\n").filter((l) => {
    const [g, o, ready] = l.split("/");
    return g && g === o && ready === "True";
  }).length;
}
async function manifestsConverge(what: string, value: string): Promise<void> {
  const r = requestLines().length;
  const c = usage(pid);
  const cpu0 = partsCpu();
  const start = performance.now();
  const ms = await applyTimed(manifestsYaml(NSM, M, K, value));
  const t0 = performance.now();
  const ratio = what === "create" && manifestsBaselineMs ? ` (${(ms / manifestsBaselineMs).toFixed(1)}x without the module)` : "";
  say(`  kubectl apply (${what}): ${(ms / 1000).toFixed(1)} s${ratio}`);
  let ready = 0;
  let rss = 0;
  const until = Date.now() + 900_000;
  while (Date.now() < until) {
    rss = Math.max(rss, usage(pid).rss);
    ready = await manifestsReady(NSM);
    if (ready >= M) break;
    await sleep(1000);
  }
  say(`  Ready for the current generation: ${ready}/${M}, ${((performance.now() - t0) / 1000).toFixed(1)} s after the end of kubectl apply`);
  showCpu(cpu0, performance.now() - start, "the apply and until Ready");
  await quiet();
  const u = usage(pid);
  const cpu = u.cpuMs - c.cpuMs;
  const cms = (await kubectl(managed!, ["get", "configmaps", "-n", NSM, "-o", `jsonpath={range .items[?(@.data.value=="${value}")]}x{end}`])).stdout.length;
  say(`  managed cluster: ${cms}/${M * K} ConfigMaps with value ${value}`);
  say(`  module CPU: ${(cpu / 1000).toFixed(1)} s = ${(cpu / (M * K)).toFixed(1)} ms per object; RSS ${rssOf(u.rss)} (max ${mib(Math.max(rss, u.rss))})`);
  showRequests(requestsSince(r), M, "Manifests");
}
if (M > 0) {
  say(`\n## ${M} Manifests of ${K} ConfigMaps each, applied to cluster ${CLUSTER}-managed through a tunnel`);
  await must(["apply", "-f", "-"], namespaceYaml(NSM));
  await profile(pid, "4-before-manifests");
  await manifestsConverge("create", "1");
  await profile(pid, `5-${M}-manifests-created`);
  await manifestsConverge("every object changed", "2");
  await profile(pid, `6-${M}-manifests-changed`);
  // drift resync: every ENTANGLE_RESYNC_SECONDS (30 s) each CR is re-applied to the remote
  const r = requestLines().length;
  const c = usage(pid);
  const parts = partsCpu();
  const remote = await managedConfigMapRequests();
  await sleep(65_000);
  const d = usage(pid).cpuMs - c.cpuMs;
  say(`\n## 65 s of drift resyncs (every 30 s) with ${M} unchanged Manifests`);
  say(`  module CPU: ${(d / 1000).toFixed(1)} s = ${(d / M).toFixed(1)} ms per Manifests; RSS ${rssOf(usage(pid).rss)}`);
  showRequests(requestsSince(r), M, "Manifests");
  showManagedRequests(remote, await managedConfigMapRequests());
  showCpu(parts, 65_000, "the resyncs");
  await profile(pid, "7-manifests-resync");
}

/** The managed cluster's API requests for ConfigMaps so far, by verb (its /metrics): what the drift check costs there. */
async function managedConfigMapRequests(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (!managed) return out;
  const r = await kubectl(managed, ["get", "--raw", "/metrics"]);
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("apiserver_request_total{") || !line.includes('resource="configmaps"')) continue;
    const verb = /verb="([A-Z]+)"/.exec(line)?.[1] ?? "?";
    out[verb] = (out[verb] ?? 0) + Number(line.split(" ").pop());
  }
  return out;
}
function showManagedRequests(before: Record<string, number>, after: Record<string, number>): void {
  const verbs = Object.keys(after).filter((v) => after[v] - (before[v] ?? 0) > 0);
  say(`  managed cluster's ConfigMap requests: ${verbs.map((v) => `${v} ${after[v] - (before[v] ?? 0)}`).join(", ") || "none"}`);
}

/** resourceVersions of the managed cluster's ConfigMaps in NSM (remote writes show as changes). */
async function remoteVersions(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!managed) return out;
  const r = await kubectl(managed, [
    "get",
    "configmaps",
    "-n",
    NSM,
    "-o",
    'jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}',
  ]);
  for (const line of r.stdout.split("\n").filter(Boolean)) {
    const [name, rv] = line.split("=");
    out.set(name, rv);
  }
  return out;
}
if (HOLD_MIN > 0) {
  say(`\n## hold: ${HOLD_MIN} min with nothing changed (${N} Entanglements, ${M} Manifests), sampled every minute`);
  const r = requestLines().length;
  const c = usage(pid);
  const remote0 = await remoteVersions();
  const parts = partsCpu();
  const remoteRequests = await managedConfigMapRequests();
  const t0 = Date.now();
  const series: string[] = [];
  for (let minute = 1; minute <= HOLD_MIN; minute++) {
    await sleep(Math.max(0, t0 + minute * 60_000 - Date.now()));
    const u = usage(pid);
    const q = requestsSince(r);
    series.push(`${minute}: ${(u.rss / 1048576).toFixed(0)}`);
    say(
      `  ${minute} min: RSS ${rssOf(u.rss)}, CPU ${((u.cpuMs - c.cpuMs) / 1000).toFixed(1)} s, requests ${q.total} (${q.writes} writes), load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`,
    );
  }
  const remote1 = await remoteVersions();
  const changed = [...remote1].filter(([name, rv]) => remote0.get(name) !== rv).length;
  const q = requestsSince(r);
  say(`  RSS (MiB) by minute: ${series.join(", ")}`);
  say(`  module CPU: ${((usage(pid).cpuMs - c.cpuMs) / 1000).toFixed(1)} s in ${HOLD_MIN} min`);
  showRequests(q, Math.max(1, N + M), "object");
  say(`  managed cluster: ${changed} of ${remote1.size} ConfigMaps changed (resourceVersion) during the hold`);
  showManagedRequests(remoteRequests, await managedConfigMapRequests());
  showCpu(parts, Date.now() - t0, "the hold");
}

say(`\n## end: module RSS ${rssOf(usage(pid).rss)}`);
if (!opts.keep) {
  // the module deletes what the Manifests applied, and lifts their finalizers
  if (M > 0) {
    const cpu0 = partsCpu();
    const r = requestLines().length;
    const t0 = performance.now();
    await k(["delete", "manifests.entangle-proxy.kairos.io", "--all", "-n", NSM, "--timeout=600s"]);
    const ms = performance.now() - t0;
    say(`## ${M} Manifests deleted (their remote objects with them) in ${(ms / 1000).toFixed(1)} s`);
    showCpu(cpu0, ms, "the deletion");
    showRequests(requestsSince(r), M, "Manifests");
  }
  await moduleDown(CLUSTER);
  await deleteNamespace(NS);
  await deleteNamespace(NSM);
  if (M > 0) await run("bash", ["hack/cluster.sh", "down", `${CLUSTER}-managed`]);
}
await killAll();
process.exit(0);
