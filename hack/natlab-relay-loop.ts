// Repeats the member-relay bulk transfer of test/natlab/nat.test.ts (issue 9's open stall) with
// traces: expose in natlab-a, a member relay at 100.128.0.6 in natlab-inet, the lab's relay
// stopped, connect in natlab-c (random ports: never punched). Then RUNS transfers of MIB up and
// MIB down at once, each classified (intact, or what each end saw) with the time it took. Load is
// printed with each line: add your own (bounded) to reproduce what a busy host does.
//
//   bash hack/natlab.sh up && node hack/natlab-relay-loop.ts [--rounds 1] [--runs 5] [--mib 4] [--logs DIR] [--via member|lab]
//
// --via lab: no member relay, the lab's relay (`agent relay`) carries the circuit.
//
// Each round starts a new connect agent in natlab-c (a new relayed connection), then transfers.
//
// Root. Agents log at debug level to DIR (default /tmp/natlab-relay-loop); NATLAB_DEBUG passes
// DEBUG (e.g. 'libp2p:circuit-relay:*,libp2p:yamux:*') to the three agents.
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadavg } from "node:os";
import { AgentProcess, ENTANGLE } from "../test/helpers/agents.ts";
import { echo, outcome, transfer, VerifyingTarget } from "../test/helpers/chaos.ts";
import { newToken } from "../lib/p2p/token.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "1" },
    runs: { type: "string", default: "5" },
    mib: { type: "string", default: "4" },
    logs: { type: "string", default: "/tmp/natlab-relay-loop" },
    via: { type: "string", default: "member" },
  },
});
const RUNS = Number(values.runs);
const MiB = 1024 * 1024;
const SIZE = Number(values.mib) * MiB;
const bootstrap = readFileSync(`${process.env.NATLAB_STATE || "/tmp/natlab"}/bootstrap`, "utf8").trim();
mkdirSync(values.logs, { recursive: true });

const SITES = { a: ["192.168.10.2", "10.254.1.2"], c: ["192.168.30.2", "10.254.3.2"], inet: ["100.128.0.6", "127.0.0.1"] } as const;
const agents: AgentProcess[] = [];
const token = newToken();
const service = "loop-" + Math.random().toString(36).slice(2, 8);

function agentIn(site: keyof typeof SITES, name: string, args: string[]): AgentProcess {
  const child = spawn(
    "ip",
    ["netns", "exec", `natlab-${site}`, process.execPath, ENTANGLE, ...args, "--p2p-listen", `${SITES[site][0]}:4001`, "--bootstrap", bootstrap],
    {
      env: {
        ...process.env,
        ENTANGLE_NETWORK_TOKEN: token,
        ENTANGLE_PEERS: undefined,
        ENTANGLE_LOG_LEVEL: "debug",
        DEBUG: process.env.NATLAB_DEBUG,
        DEBUG_COLORS: "no",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const file = createWriteStream(`${values.logs}/${name}.log`);
  child.stderr.on("data", (d: Buffer) => file.write(d));
  const p = new AgentProcess(child);
  agents.push(p);
  return p;
}

const lab = (cmd: string) => spawnSync("bash", ["hack/natlab.sh", cmd], { encoding: "utf8", timeout: 60_000 });
const load = () => loadavg()[0].toFixed(1);
const say = (s: string) => process.stderr.write(`[loop ${new Date().toISOString().slice(11, 19)} load ${load()}] ${s}\n`);

// stopped early (timeout, ^C): no agent left behind, the lab's relay back
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    for (const p of agents) p.child.kill("SIGKILL");
    lab("relay-start");
    process.exit(1);
  });

const target = await new VerifyingTarget(8 * MiB, "10.254.1.1").start();
try {
  const expose = agentIn("a", "expose", [
    "agent",
    "expose",
    "--service",
    service,
    "--target",
    `10.254.1.1:${target.port}`,
    "--health-listen",
    `${SITES.a[1]}:9200`,
  ]);
  const exposeId = (await expose.waitMsg("agent started", 90_000)).peerId;
  if (values.via === "member") {
    const member = agentIn("inet", "member", ["agent", "connect", "--service", service, "--listen", "127.0.0.1:9000", "--health-listen", "127.0.0.1:9100"]);
    const memberId = (await member.waitMsg("agent started", 90_000)).peerId;
    await member.waitMsg("publicly reachable: relaying for members (members only, no limits)", 60_000);
    await expose.waitFor((l) => l.msg === "member authenticated" && l.peer === memberId, 120_000);
    lab("relay-stop");
  }
  const tally = { intact: 0, other: 0 };
  for (let round = 1; round <= Number(values.rounds); round++) {
    // a new connect agent each round: a new relayed connection (the stalls were seen right after one)
    const t0 = performance.now();
    const c = agentIn("c", `connect${round}`, [
      "agent",
      "connect",
      "--service",
      service,
      "--listen",
      `${SITES.c[1]}:9002`,
      "--health-listen",
      `${SITES.c[1]}:9102`,
    ]);
    while (!(await echo(9002, 64, SITES.c[1], 3_000))) {
      if (performance.now() - t0 > 150_000) throw new Error("no echo through natlab-c in 150 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    const auth = await c.waitFor((l) => l.msg === "member authenticated" && l.peer === exposeId);
    say(`round ${round}: c reached a ${String(auth.path)} via ${String(auth.addr)} ${Math.round(performance.now() - t0)} ms after its start`);
    for (let i = 1; i <= RUNS; i++) {
      const t1 = performance.now();
      const ts = [transfer(target, 9002, "up", SIZE, SITES.c[1]), transfer(target, 9002, "down", SIZE, SITES.c[1])];
      const o = await outcome(ts, 120_000);
      const ok = o.completed === 2 && ts.every((t) => t.ok);
      tally[ok ? "intact" : "other"]++;
      say(`round ${round} run ${i}: ${ok ? "intact" : "NOT intact"} in ${Math.round(performance.now() - t1)} ms: ${o.summary}`);
    }
    await c.kill();
  }
  say(`tally: ${tally.intact} of ${tally.intact + tally.other} intact (${values.mib} MiB each way at once)`);
} finally {
  await Promise.all(agents.map((p) => p.kill()));
  target.close();
  lab("relay-start");
}
