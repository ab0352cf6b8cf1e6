// Chaos for the control plane side: the watcher (the module process) and the API server are
// killed with SIGKILL in the middle of a Manifests apply. The cluster is its own "remote"
// (an `entangle agent api-proxy` serves its API on the network, the module reaches it through
// a relay that holds no token), so the API server's death hits both the watcher and the
// remote apply. A watch of the remote namespace (resumed across the outage from its last
// resourceVersion, so no event is missed) proves that nothing is applied twice (no object
// deleted and created again, no writes once converged) and nothing is lost.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig, Watch } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { killAll, runEntangle, type AgentProcess } from "../helpers/agents.ts";
import { getJson, kc, kubectl, moduleDown, moduleUp, until } from "../helpers/k8s.ts";

type Any = Record<string, any>;
const CLUSTER = process.env.ENTANGLE_TEST_CLUSTER || "test";
const STATE = join(process.env.ENTANGLE_STATE_DIR ?? "/tmp/entangle-clusters", CLUSTER);
const NS = "chaos-remote";
const token = newToken();
let kcfg = "";
let moduleEnv: Record<string, string> = {};
let proxy: AgentProcess;

// ---- a resumable watch of the remote namespace's ConfigMaps --------------------------------
interface History {
  added: number;
  modified: number;
  deleted: number;
  value?: string;
  uid?: string;
}
const history = new Map<string, History>();
let lastEventAt = 0;
let stopWatch = false;

function record(type: string, o: Any): void {
  const name = o.metadata.name as string;
  const h = history.get(name) ?? { added: 0, modified: 0, deleted: 0 };
  // a resumed watch may replay ADDED for an object it already reported: only a new uid is a new object
  if (type === "ADDED" && h.uid !== undefined && h.uid === o.metadata.uid) type = "MODIFIED";
  else if (type === "ADDED" && h.uid !== undefined) h.deleted++;
  h[type === "ADDED" ? "added" : type === "DELETED" ? "deleted" : "modified"]++;
  h.value = type === "DELETED" ? undefined : o.data?.value;
  h.uid = type === "DELETED" ? undefined : o.metadata.uid;
  history.set(name, h);
  lastEventAt = Date.now();
}

/**
 * List, and account for what changed since the last event seen (a restarted API server answers
 * a watch from before its restart with 410 Gone): an object with a new uid was deleted and
 * created again. No write can happen while the API server is down, so this gap is short.
 */
async function relist(): Promise<string> {
  const list = await getJson(kcfg, ["configmaps", "-n", NS]);
  const seen = new Set<string>();
  for (const o of list.items) {
    const name = o.metadata.name as string;
    seen.add(name);
    const h = history.get(name);
    if (h !== undefined && h.uid === o.metadata.uid) {
      if (h.value !== o.data?.value) record("MODIFIED", o);
      continue;
    }
    record("ADDED", o); // a known name with a new uid counts as deleted and added again
  }
  for (const [name, h] of history) if (h.uid !== undefined && !seen.has(name)) record("DELETED", { metadata: { name } });
  return list.metadata.resourceVersion;
}

async function watchRemote(): Promise<void> {
  const config = new KubeConfig();
  config.loadFromFile(kcfg);
  let rv = await relist();
  lastEventAt = 0;
  const loop = async () => {
    while (!stopWatch) {
      let gone = false;
      await new Promise<void>((resolve) => {
        new Watch(config)
          .watch(
            `/api/v1/namespaces/${NS}/configmaps`,
            { resourceVersion: rv, allowWatchBookmarks: true },
            (type: string, o: Any) => {
              if (type === "ERROR") return void (gone = true);
              rv = o.metadata?.resourceVersion ?? rv;
              if (type !== "BOOKMARK") record(type, o);
            },
            () => resolve(),
          )
          .catch(() => resolve());
      });
      // the API server is down, or the watch ended: resume from the last resourceVersion
      await new Promise((r) => setTimeout(r, 500));
      if (gone) rv = await relist().catch(() => rv);
    }
  };
  void loop();
}

// ---- the Manifests under test --------------------------------------------------------------
const configMap = (name: string, value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${NS}}\ndata: {value: "${value}"}\n`;
const manifests = (name: string, entries: string[]) =>
  JSON.stringify({
    apiVersion: "entangle-proxy.kairos.io/v1alpha1",
    kind: "Manifests",
    metadata: { name, namespace: "default" },
    spec: { serviceUUID: "chaos-api", secretRef: "chaos-token", manifests: entries },
  });
const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const present = (prefix: string) => [...history].filter(([n, h]) => n.startsWith(prefix + "-") && h.value !== undefined).length;

/** The CR is Ready at its generation, with exactly `n` entries, each Applied. */
async function converged(name: string, n: number): Promise<Any> {
  return until(
    `${name} converged`,
    async () => {
      const o = await getJson(kcfg, ["manifests.entangle-proxy.kairos.io", name, "-n", "default"]);
      const ready = o.status?.conditions?.find((c: Any) => c.type === "Ready");
      return (
        ready?.status === "True" &&
        o.status.observedGeneration === o.metadata.generation &&
        o.status.applied?.length === n &&
        o.status.applied.every((a: Any) => a.state === "Applied") &&
        o
      );
    },
    180_000,
  );
}

/** Each name was created exactly once, never deleted, and holds `value`; then no write for two resyncs. */
async function exactlyOnce(expected: Record<string, string>): Promise<void> {
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 7_000)); // resync every 3 s: two of them
  for (const [name, value] of Object.entries(expected)) {
    expect(history.get(name), name).toMatchObject({ added: 1, deleted: 0, value });
    const live = await getJson(kcfg, ["configmap", name, "-n", NS]);
    expect(live.data.value, name).toBe(value);
  }
  expect(lastEventAt, "a remote object was written after the Manifests converged").toBeLessThan(since);
}

function report(what: string, detail: string): void {
  console.log(`[chaos] ${what}: ${detail}`);
}

beforeAll(async () => {
  kcfg = inject("kubeconfig");
  const relay = runEntangle(["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
  const relayAddr = ((await relay.waitMsg("agent started", 90_000)).addrs as string[])[0];
  moduleEnv = { ENTANGLE_PEERS: relayAddr, ENTANGLE_RESYNC_SECONDS: "3", ENTANGLE_P2P_LISTEN: "127.0.0.1:0" };
  await moduleDown(CLUSTER);
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=true", "--timeout=60s"]);
  await kc(kcfg, ["create", "namespace", NS]);
  await kubectl(kcfg, ["delete", "secret", "chaos-token", "-n", "default"]);
  await kc(kcfg, ["create", "secret", "generic", "chaos-token", "-n", "default", `--from-literal=network_token=${token}`]);
  await moduleUp(CLUSTER, moduleEnv);
  proxy = runEntangle(["agent", "api-proxy", "--service", "chaos-api", "--kubeconfig", kcfg, "--p2p-listen", "127.0.0.1:0", "--peer", relayAddr], {
    ENTANGLE_NETWORK_TOKEN: token,
  });
  await proxy.waitMsg("agent started", 90_000);
  await watchRemote();
}, 600_000);

afterAll(async () => {
  stopWatch = true;
  // --ignore-not-found: a name already gone would make kubectl skip the wait, and the module
  // stopped below would leave the others to the next run, being finalized under its feet
  await kubectl(kcfg, [
    "delete",
    "manifests.entangle-proxy.kairos.io",
    "chaos-a",
    "chaos-b",
    "chaos-c",
    "chaos-w",
    "chaos-d1",
    "chaos-d2",
    "-n",
    "default",
    "--ignore-not-found",
    "--timeout=60s",
  ]);
  await moduleDown(CLUSTER);
  await killAll();
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=false"]);
  await kubectl(kcfg, ["delete", "secret", "chaos-token", "-n", "default"]);
}, 180_000);

describe("kill -9 during a Manifests apply", () => {
  it("the watcher (module process): after its restart every object is applied exactly once, edits made while it was down included", async () => {
    await kc(
      kcfg,
      ["apply", "-f", "-"],
      manifests(
        "chaos-a",
        names("a", 24).map((n) => configMap(n, "v1")),
      ),
    );
    await until("a first object applied", async () => present("a") > 0, 120_000);
    const pid = Number(readFileSync(join(STATE, "module/pid"), "utf8"));
    process.kill(pid, "SIGKILL");
    const atKill = present("a");
    // while no watcher runs: a-0..9 change, a-20..23 leave the list (generation 2)
    const edited = names("a", 20).map((n, i) => configMap(n, i < 10 ? "v2" : "v1"));
    await kc(kcfg, ["apply", "-f", "-"], manifests("chaos-a", edited));
    const t0 = performance.now();
    await moduleUp(CLUSTER, moduleEnv);
    const upMs = Math.round(performance.now() - t0);
    await converged("chaos-a", 20);
    await until(
      "a-20..23 pruned",
      async () =>
        names("a", 24)
          .slice(20)
          .every((n) => history.get(n)?.value === undefined),
      60_000,
    );
    const ms = Math.round(performance.now() - t0);
    await exactlyOnce(Object.fromEntries(names("a", 20).map((n, i) => [n, i < 10 ? "v2" : "v1"])));
    // what left the list was created at most once and deleted once
    for (const n of names("a", 24).slice(20)) expect([0, 1]).toContain(history.get(n)?.added ?? 0);
    report(
      "module kill -9 mid-apply",
      `${atKill} of 24 applied at the kill; restarted in ${upMs} ms, converged (edits applied, 4 pruned) ${ms} ms after the restart began`,
    );
  }, 420_000);

  it("the watcher killed between an apply and its status write: what it applied is pruned, or deleted with the CR; someone else's object is left", async () => {
    const gone = (n: string) => history.get(n)?.value === undefined;
    const killModule = () => process.kill(Number(readFileSync(join(STATE, "module/pid"), "utf8")), "SIGKILL");
    // someone else's object, declared too: only a Pending record names it when the kill lands
    await kc(kcfg, ["create", "configmap", "w-theirs", "-n", NS, "--from-literal=value=theirs"]);
    const theirs = (await getJson(kcfg, ["configmap", "w-theirs", "-n", NS])).metadata.uid;
    // the module stops for good right after applying w-1 (ENTANGLE_TEST_HOLD_AFTER_APPLY): its
    // status write never comes, so the kill lands between the apply and that write every time
    await moduleDown(CLUSTER);
    await moduleUp(CLUSTER, { ...moduleEnv, ENTANGLE_TEST_HOLD_AFTER_APPLY: "w-1" });
    await kc(
      kcfg,
      ["apply", "-f", "-"],
      manifests(
        "chaos-w",
        ["w-0", "w-1", "w-theirs", "w-2"].map((n) => configMap(n, "v1")),
      ),
    );
    await until("w-1 applied", async () => !gone("w-1"), 120_000);
    killModule();
    // while no watcher runs, the spec drops all but w-0
    await kc(kcfg, ["apply", "-f", "-"], manifests("chaos-w", [configMap("w-0", "v1")]));
    await moduleUp(CLUSTER, moduleEnv);
    await converged("chaos-w", 1);
    await until("w-1 pruned", async () => gone("w-1"), 60_000);
    expect(history.get("w-2"), "w-2 was never applied").toBeUndefined();
    const left = await getJson(kcfg, ["configmap", "w-theirs", "-n", NS]);
    expect([left.metadata.uid, left.data.value]).toEqual([theirs, "theirs"]);

    // the same kill, then the CR is deleted while no watcher runs: the finalizer deletes what was applied
    await moduleDown(CLUSTER);
    await moduleUp(CLUSTER, { ...moduleEnv, ENTANGLE_TEST_HOLD_AFTER_APPLY: "w-4" });
    await kc(
      kcfg,
      ["apply", "-f", "-"],
      manifests(
        "chaos-w",
        ["w-0", "w-3", "w-4", "w-5"].map((n) => configMap(n, "v1")),
      ),
    );
    await until("w-4 applied", async () => !gone("w-4"), 120_000);
    killModule();
    await kc(kcfg, ["delete", "manifests.entangle-proxy.kairos.io", "chaos-w", "-n", "default", "--wait=false"]);
    await moduleUp(CLUSTER, moduleEnv);
    const cr = ["manifests.entangle-proxy.kairos.io", "chaos-w", "-n", "default"];
    await until("chaos-w finalized", async () => (await kubectl(kcfg, ["get", ...cr])).code !== 0, 60_000);
    await until("w-0, w-3, w-4 deleted", async () => ["w-0", "w-3", "w-4"].every(gone), 60_000);
    expect(history.get("w-5"), "w-5 was never applied").toBeUndefined();
    expect((await getJson(kcfg, ["configmap", "w-theirs", "-n", NS])).metadata.uid).toBe(theirs);
  }, 420_000);

  it("a Manifests gone without its finalizer is forgotten at its watch event: what it declared no longer keeps another's prune from deleting", async () => {
    const gone = (n: string) => history.get(n)?.value === undefined;
    const crs = "manifests.entangle-proxy.kairos.io";
    // no resync while the test runs (its list would forget chaos-d2 too): only the watch's DELETED
    // event tells the module that chaos-d2 is gone; chaos-d2's reconcile stops for good after d-hold
    await moduleDown(CLUSTER);
    await moduleUp(CLUSTER, { ...moduleEnv, ENTANGLE_RESYNC_SECONDS: "3600", ENTANGLE_TEST_HOLD_AFTER_APPLY: "d-hold" });
    await kc(kcfg, ["apply", "-f", "-"], manifests("chaos-d1", [configMap("d-x", "v1"), configMap("d-y", "v1")]));
    await converged("chaos-d1", 2);
    // a prune: the module lists the Manifests once, and keeps them from the watch from then on
    await kc(kcfg, ["apply", "-f", "-"], manifests("chaos-d1", [configMap("d-x", "v1")]));
    await until("d-y pruned", async () => gone("d-y"), 60_000);
    // chaos-d2 declares d-x too; its finalizer is removed by hand (the held reconcile cannot put it
    // back) and it is deleted: gone at once, never finalized
    await kc(kcfg, ["apply", "-f", "-"], manifests("chaos-d2", [configMap("d-hold", "v1"), configMap("d-x", "v1")]));
    await until("d-hold applied", async () => !gone("d-hold"), 60_000);
    await kc(kcfg, ["patch", crs, "chaos-d2", "-n", "default", "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    await kc(kcfg, ["delete", crs, "chaos-d2", "-n", "default", "--timeout=30s"]);
    // chaos-d1 drops d-x, which no Manifests declares any more: pruned
    await kc(kcfg, ["apply", "-f", "-"], manifests("chaos-d1", [configMap("d-z", "v1")]));
    await converged("chaos-d1", 1);
    await until("d-x pruned", async () => gone("d-x"), 60_000);
    process.kill(Number(readFileSync(join(STATE, "module/pid"), "utf8")), "SIGKILL");
    await moduleUp(CLUSTER, moduleEnv);
    await kc(kcfg, ["delete", "configmap", "d-hold", "-n", NS]); // chaos-d2's, left by its deletion without finalizer
  }, 420_000);

  it("the API server: after it is back every object is applied exactly once and new CRs are seen", async () => {
    const apiserver = join(STATE, "pids/kube-apiserver");
    const pid = Number(readFileSync(apiserver, "utf8"));
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    await kc(
      kcfg,
      ["apply", "-f", "-"],
      manifests(
        "chaos-b",
        names("b", 24).map((n) => configMap(n, "v1")),
      ),
    );
    await until("a first object applied", async () => present("b") > 0, 120_000);
    process.kill(pid, "SIGKILL");
    const killedAt = performance.now();
    const atKill = present("b");
    await new Promise((r) => setTimeout(r, 10_000)); // 10 s without an API server
    // back with the same flags, ports and etcd, as its supervisor would (hack/cluster.sh down finds it by the pid file)
    const log = openSync(join(STATE, "logs/kube-apiserver.log"), "a");
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", log, log] });
    closeSync(log);
    child.unref();
    writeFileSync(apiserver, String(child.pid));
    await until("API server ready", async () => (await kubectl(kcfg, ["get", "--raw", "/readyz"])).stdout === "ok", 120_000);
    const readyAt = performance.now();
    // a CR created after the outage: the module's watch is back too
    await kc(kcfg, ["apply", "-f", "-"], manifests("chaos-c", [configMap("c-0", "after")]));
    await converged("chaos-b", 24);
    await converged("chaos-c", 1);
    const ms = Math.round(performance.now() - readyAt);
    await exactlyOnce({ ...Object.fromEntries(names("b", 24).map((n) => [n, "v1"])), "c-0": "after" });
    report(
      "API server kill -9 mid-apply",
      `${atKill} of 24 applied at the kill, 10 s down, ready again ${Math.round(readyAt - killedAt - 10_000)} ms after its restart; everything converged ${ms} ms after it was ready`,
    );
  }, 420_000);
});
