// Benchmark driver (see hack/bench.sh): the same workloads through each path, in one run.
//   bulk upload / download (BENCH_MIB MiB, median of 3), 64-byte echo round trip p50/p99,
//   new connection -> first byte p50/p99 (the server speaks first) and -> first reply p50 (the
//   client speaks first, as HTTP does), request rate (64-byte request, 64-byte reply, one
//   outstanding per connection) over 1 and BENCH_RR_CONNS connections. New connections are
//   measured twice: cold (the first BENCH_CONNECTS after bulk and echoes) and warm (after
//   BENCH_WARMUP more, unrecorded): a new connection's code runs a few times per connection,
//   so V8 optimises it only after a thousand or so, and a long-running agent runs it warm.
//   Echoes likewise: cold (the first BENCH_ECHOES after bulk) and warm (BENCH_ECHOES more on the
//   same connection after BENCH_ECHO_WARMUP unrecorded ones): after the bulk transfers, the
//   tunnel's first 2,000 echoes still had a p99 3-5x its later rounds' (hack/bench-echo.ts).
// Paths: direct TCP; two plain Node processes relaying TCP and TLS sockets (hack/bench-pipe.ts,
// one connection per client connection: the JavaScript floor); `ssh -L` (default cipher,
// aes128-gcm); the Entangle tunnel; and, with BENCH_COMPARE_TREE=DIR (a copy of another
// version, node_modules included), that version's tunnel too, for before/after in one run
// (BENCH_TREE=DIR runs "entangle tunnel" from such a copy instead of this tree).
// BENCH_PATHS=a,b keeps only paths whose name contains one of those words; BENCH_AGENT_ARGS
// adds Node options to the data agents (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof");
// BENCH_ENV_<LABEL>="K=V ..." sets environment variables for one compare tree's agents (the same
// tree twice, e.g. BENCH_COMPARE_TREE=arena=. BENCH_ENV_arena="MALLOC_ARENA_MAX=2", compares
// settings). BENCH_RSS_PHASES=1 prints the relaying processes' RSS after each phase.
// BENCH_BULK=N: bulk only, paired: every selected path is set up first, then N rounds in
// alternating order, one upload and one download per path and round, with each path's ratio to
// ssh -L aes128-gcm in the same round and the relaying processes' CPU seconds per GiB.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { newToken } from "../lib/p2p/token.ts";
import { freePort } from "../test/helpers/agents.ts";
import { cpuSeconds, echoPhases, envWords, firstByte, firstByteOnce, listen, median, open, requestRate, waitForPort } from "./bench-lib.ts";

const MIB = Number(process.env.BENCH_MIB ?? 256);
const ROUNDS = 3;
const ECHOES = Number(process.env.BENCH_ECHOES ?? 2000);
const CONNECTS = Number(process.env.BENCH_CONNECTS ?? 300);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1000);
const ECHO_WARMUP = Number(process.env.BENCH_ECHO_WARMUP ?? 4000);
const RR_COUNT = Number(process.env.BENCH_RR ?? 20_000);
const RR_CONNS = Number(process.env.BENCH_RR_CONNS ?? 50);
const RR_MAX_MS = 10_000;
/** request/reply runs: the target's first byte 'e' selects echo */
const rr = { count: RR_COUNT, maxMs: RR_MAX_MS, prefix: "e" };
const pipeScript = fileURLToPath(new URL("./bench-pipe.ts", import.meta.url));
const children: ChildProcess[] = [];

// --- target servers -----------------------------------------------------------------------
const block = Buffer.alloc(1 << 20, 0x5a);
/** First byte says what to do: 'u' = sink (reply 'k' at EOF), 'd' = send MIB MiB, 'e' = echo, 'f' = reply one byte. */
const target = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  s.on("error", () => {});
  s.once("data", (first: Buffer) => {
    const op = String.fromCharCode(first[0]);
    if (op === "u") {
      s.on("data", () => {});
      s.on("end", () => s.end("k"));
    } else if (op === "d") {
      let left = MIB;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!s.write(block)) return void s.once("drain", pump);
        }
        s.end();
      };
      pump();
    } else if (op === "e") {
      if (first.length > 1) s.write(first.subarray(1));
      s.pipe(s);
    }
  });
});
// new-connection latency: the server speaks first
const greeter = createServer({ noDelay: true }, (s) => {
  s.on("error", () => {});
  s.end("!");
});

// --- workloads ----------------------------------------------------------------------------

async function upload(port: number): Promise<number> {
  const s = await open(port);
  const t0 = performance.now();
  s.write("u");
  let left = MIB;
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.on("data", () => {});
    s.once("end", () => resolve());
    const pump = () => {
      while (left > 0) {
        left--;
        if (!s.write(block)) return void s.once("drain", pump);
      }
      s.end();
    };
    pump();
  });
  s.destroy();
  return MIB / ((performance.now() - t0) / 1000);
}

async function download(port: number): Promise<number> {
  const s = await open(port);
  const t0 = performance.now();
  let got = 0;
  s.write("d");
  await new Promise<void>((resolve, reject) => {
    s.on("data", (d: Buffer) => (got += d.length));
    s.once("end", () => resolve());
    s.once("error", reject);
  });
  s.destroy();
  if (got !== MIB * 1048576) throw new Error(`download got ${got} bytes`);
  return MIB / ((performance.now() - t0) / 1000);
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

// --- paths --------------------------------------------------------------------------------
interface Path {
  name: string;
  data: number;
  greet: number;
  /** Node processes whose memory is reported (the agents or relays carrying `data`) */
  procs?: ChildProcess[];
  /** BENCH_BULK: processes whose CPU time is reported when they are not `procs` (ssh's) */
  cpuPids?: () => number[];
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): ChildProcess {
  const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"], env, cwd });
  children.push(c);
  return c;
}

let tlsFiles: { dir: string; cert: string; key: string } | undefined;
function tlsCert() {
  if (tlsFiles) return tlsFiles;
  const dir = mkdtempSync(join(tmpdir(), "entangle-bench-tls."));
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
    { stdio: "ignore" },
  );
  return (tlsFiles = { dir, cert, key });
}

/** Two plain Node relays (hack/bench-pipe.ts) in a row, TCP or TLS between them, per target. */
async function plainPipePath(name: string, secure: boolean, dataPort: number, greetPort: number): Promise<Path> {
  const node = process.execPath;
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  for (const targetPort of [dataPort, greetPort]) {
    const [inner, outer] = [await freePort(), await freePort()];
    const files = secure ? tlsCert() : undefined;
    const b = run(node, [
      pipeScript,
      String(inner),
      `127.0.0.1:${targetPort}`,
      secure ? "in=tls" : "in=tcp",
      "out=tcp",
      ...(files ? [files.cert, files.key] : []),
    ]);
    const a = run(node, [pipeScript, String(outer), `127.0.0.1:${inner}`, "in=tcp", secure ? "out=tls" : "out=tcp"]);
    if (targetPort === dataPort) procs.push(a, b);
    await waitForPort(inner);
    await waitForPort(outer);
    ports.push(outer);
  }
  return { name, data: ports[0], greet: ports[1], procs };
}

async function sshPath(name: string, cipherArgs: string[], dataPort: number, greetPort: number): Promise<Path> {
  const [a, b] = [await freePort(), await freePort()];
  const client = run("ssh", [
    "-N",
    "-p",
    process.env.BENCH_SSH_PORT!,
    "-i",
    process.env.BENCH_SSH_KEY!,
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    ...cipherArgs,
    "-L",
    `127.0.0.1:${a}:127.0.0.1:${dataPort}`,
    "-L",
    `127.0.0.1:${b}:127.0.0.1:${greetPort}`,
    `${process.env.BENCH_SSH_USER ?? "root"}@127.0.0.1`,
  ]);
  await waitForPort(a);
  // CPU time: the ssh client and the sessions of bench.sh's throwaway sshd (its config file is
  // next to BENCH_SSH_KEY)
  const config = join(dirname(process.env.BENCH_SSH_KEY!), "sshd_config");
  const sshd = processes().find((p) => p.cmdline.includes(config))?.pid;
  const cpuPids = () => [client.pid!, ...(sshd !== undefined ? descendants(sshd) : [])];
  return { name, data: a, greet: b, cpuPids };
}

/** This host's processes: pid, parent, command line (from /proc). */
function processes(): Array<{ pid: number; ppid: number; cmdline: string }> {
  const out = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.push({ pid: Number(d), ppid, cmdline: readFileSync(`/proc/${d}/cmdline`, "utf8").replaceAll("\0", " ") });
    } catch {
      // gone
    }
  }
  return out;
}

/** Processes below `pid`, for CPU time. */
function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const p of processes()) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p.pid]);
  const out: number[] = [];
  const walk = (p: number) => {
    for (const k of kids.get(p) ?? []) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

const agents: Array<{ role: string; child: ChildProcess }> = [];

/** Resident memory of a process now (VmRSS) or its peak (VmHWM), in MiB. */
function rssMiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function tunnelPath(name: string, root: string, dataPort: number, greetPort: number, own: NodeJS.ProcessEnv = {}): Promise<Path> {
  const env = { ...process.env, ENTANGLE_NETWORK_TOKEN: newToken(), ENTANGLE_LOG_LEVEL: "warn", ...own };
  const [p2pA, p2pB, a, b] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const node = process.execPath;
  // the bundled agent, as the image runs it (hack/build-agent.ts; bench.sh builds it), else the sources
  const bundled = join(root, "dist", "agent", "entangle.mjs");
  const bin = existsSync(bundled) ? bundled : join(root, "bin", "entangle.js");
  const nodeArgs = (process.env.BENCH_AGENT_ARGS ?? "").split(" ").filter(Boolean);
  const expose = run(
    node,
    [...nodeArgs, bin, "agent", "expose", "--service", "data", "--target", `127.0.0.1:${dataPort}`, "--p2p-listen", `127.0.0.1:${p2pA}`],
    env,
    root,
  );
  agents.push({ role: `${name}: expose`, child: expose });
  run(node, [bin, "agent", "expose", "--service", "greet", "--target", `127.0.0.1:${greetPort}`, "--p2p-listen", `127.0.0.1:${p2pB}`], env, root);
  const common = ["--p2p-listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"];
  const conn = run(
    node,
    [...nodeArgs, bin, "agent", "connect", "--service", "data", "--listen", `127.0.0.1:${a}`, "--peer", `127.0.0.1:${p2pA}`, ...common],
    env,
    root,
  );
  agents.push({ role: `${name}: connect`, child: conn });
  run(node, [bin, "agent", "connect", "--service", "greet", "--listen", `127.0.0.1:${b}`, "--peer", `127.0.0.1:${p2pB}`, ...common], env, root);
  await waitForPort(a);
  await waitForPort(b);
  // wait until the tunnels really carry bytes
  for (let i = 0; i < 100; i++) {
    try {
      await firstByteOnce(b);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { name, data: a, greet: b, procs: [conn, expose] };
}

/** BENCH_RSS_PHASES=1: the relaying processes' RSS and peak after each phase (where does the peak come from) */
function phase(p: Path, name: string) {
  if (!process.env.BENCH_RSS_PHASES || !p.procs) return;
  const mib = (f: "VmRSS" | "VmHWM") => p.procs!.map((c) => rssMiB(c.pid!, f).toFixed(0)).join(" + ");
  process.stderr.write(`  ${p.name} after ${name}: RSS ${mib("VmRSS")}, peak ${mib("VmHWM")} MiB\n`);
}

async function measure(p: Path) {
  // memory of the relaying processes once set up and carrying a first connection
  await firstByteOnce(p.greet).catch(() => {});
  const idle = (p.procs ?? []).map((c) => rssMiB(c.pid!, "VmRSS"));
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    up.push(await upload(p.data));
    down.push(await download(p.data));
  }
  phase(p, "bulk");
  // cold: the first echoes after bulk; warm: on the same connection, after ECHO_WARMUP more
  const [rtt, , rttWarm] = await echoPhases(p.data, [ECHOES, ECHO_WARMUP, ECHOES], "e");
  phase(p, "echoes");
  const fb = await firstByte(p.greet, CONNECTS);
  // the client speaks first: 'e' selects echo, '!' comes back
  const fr = await firstByte(p.data, CONNECTS, "e!");
  // the same once warm (half the warm-up each way)
  await firstByte(p.greet, WARMUP / 2);
  await firstByte(p.data, WARMUP / 2, "e!");
  const fbWarm = await firstByte(p.greet, CONNECTS);
  const frWarm = await firstByte(p.data, CONNECTS, "e!");
  phase(p, "new connections");
  // CPU time of the relaying processes per request: robust against other load on the host
  let cpu = cpuSeconds(p.procs);
  const one = await requestRate(p.data, 1, rr);
  const cpu1 = cpuSeconds(p.procs) - cpu;
  phase(p, "requests, 1 connection");
  cpu = cpuSeconds(p.procs);
  const many = await requestRate(p.data, RR_CONNS, rr);
  const cpuN = cpuSeconds(p.procs) - cpu;
  phase(p, `requests, ${RR_CONNS} connections`);
  const [rr1, rrN, us1, usN] = [one.rate, many.rate, (cpu1 * 1e6) / one.done, (cpuN * 1e6) / many.done];
  const peak = (p.procs ?? []).map((c) => rssMiB(c.pid!, "VmHWM"));
  const r = {
    name: p.name,
    up: median(up),
    down: median(down),
    rtt50: pct(rtt, 50),
    rtt99: pct(rtt, 99),
    rttWarm50: pct(rttWarm, 50),
    rttWarm99: pct(rttWarm, 99),
    fb50: pct(fb, 50),
    fb99: pct(fb, 99),
    fr50: pct(fr, 50),
    fbWarm50: pct(fbWarm, 50),
    fbWarm99: pct(fbWarm, 99),
    frWarm50: pct(frWarm, 50),
    rr1,
    rrN,
    us1,
    usN,
    idle,
    peak,
  };
  process.stderr.write(
    `  ${r.name}: up ${r.up.toFixed(0)} MiB/s, down ${r.down.toFixed(0)} MiB/s, rtt p50 / p99 ${r.rtt50.toFixed(3)} / ${r.rtt99.toFixed(3)} ms (warm ${r.rttWarm50.toFixed(3)} / ${r.rttWarm99.toFixed(3)}), first byte p50 ${r.fb50.toFixed(2)} ms (warm ${r.fbWarm50.toFixed(2)}), first reply p50 ${r.fr50.toFixed(2)} ms (warm ${r.frWarm50.toFixed(2)}), ` +
      `${rr1.toFixed(0)} req/s (1 conn), ${rrN.toFixed(0)} req/s (${RR_CONNS} conns)\n`,
  );
  return r;
}

/** BENCH_BULK=N: bulk only, all paths set up at once and measured in N alternating rounds. */
async function bulkRounds(paths: Path[], rounds: number) {
  const rows = new Map<string, number[][]>(paths.map((p) => [p.name, []]));
  const gib = MIB / 1024;
  // one unrecorded transfer each way per path first: the agents' code gets compiled (the first
  // transfer after start-up is up to 2x slower)
  for (const p of paths) {
    await upload(p.data);
    await download(p.data);
  }
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? paths : [...paths].reverse();
    const got = new Map<string, number[]>();
    for (const p of order) {
      const procs = () => p.procs ?? p.cpuPids?.().map((pid) => ({ pid }) as ChildProcess);
      let cpu = cpuSeconds(procs());
      const up = await upload(p.data);
      const cpuUp = (cpuSeconds(procs()) - cpu) / gib;
      cpu = cpuSeconds(procs());
      const down = await download(p.data);
      const cpuDown = (cpuSeconds(procs()) - cpu) / gib;
      got.set(p.name, [up, down, cpuUp, cpuDown]);
    }
    const gcm = [...got].find(([n]) => n.startsWith("ssh -L aes128"))?.[1];
    const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
    for (const p of paths) {
      const [up, down, cpuUp, cpuDown] = got.get(p.name)!;
      const row = [up, down, gcm ? up / gcm[0] : NaN, gcm ? down / gcm[1] : NaN, cpuUp, cpuDown];
      rows.get(p.name)!.push(row);
      process.stderr.write(
        `  round ${round + 1} (load ${load}) ${p.name}: up ${up.toFixed(0)} / down ${down.toFixed(0)} MiB/s` +
          (gcm ? `, ${row[2].toFixed(2)}x / ${row[3].toFixed(2)}x aes128-gcm` : "") +
          (p.procs || p.cpuPids ? `, CPU ${cpuUp.toFixed(2)} / ${cpuDown.toFixed(2)} s per GiB` : "") +
          "\n",
      );
    }
  }
  console.log(
    `\n| path | up / down MiB/s (median of ${rounds}) | vs ssh aes128-gcm up / down (median of per-round ratios) | relays' CPU s per GiB up / down | relays' peak RSS MiB |`,
  );
  console.log("|---|---:|---:|---:|---:|");
  for (const [name, rs] of rows) {
    const m = (i: number) => median(rs.map((r) => r[i]));
    const p = paths.find((x) => x.name === name);
    const cpu = p?.procs || p?.cpuPids ? `${m(4).toFixed(2)} / ${m(5).toFixed(2)}` : "-";
    const peak = p?.procs ? p.procs.map((c) => rssMiB(c.pid!, "VmHWM").toFixed(0)).join(" + ") : "-";
    console.log(`| ${name} | ${m(0).toFixed(0)} / ${m(1).toFixed(0)} | ${m(2).toFixed(2)}x / ${m(3).toFixed(2)}x | ${cpu} | ${peak} |`);
  }
  console.log(`load average at the end: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
}

async function main() {
  const dataPort = await listen(target);
  const greetPort = await listen(greeter);
  process.stderr.write(
    `benchmark: ${MIB} MiB x ${ROUNDS} each way, ${ECHOES} echoes cold and ${ECHOES} warm (after ${ECHO_WARMUP}), ${CONNECTS} new connections cold and ${CONNECTS} warm (after ${WARMUP}), ` +
      `${RR_COUNT} requests (or ${RR_MAX_MS / 1000} s) over 1 and ${RR_CONNS} connections per path\n`,
  );
  // each path is set up right before it is measured, so no path's processes sit idle (or
  // compete) while another is measured
  const paths: Array<[string, () => Promise<Path>]> = [["direct TCP", async () => ({ name: "direct TCP", data: dataPort, greet: greetPort })]];
  paths.push(["node pipe TCP", () => plainPipePath("node pipe TCP", false, dataPort, greetPort)]);
  paths.push(["node pipe TLS", () => plainPipePath("node pipe TLS", true, dataPort, greetPort)]);
  if (process.env.BENCH_SSH_PORT) {
    paths.push(["ssh -L (default cipher)", () => sshPath("ssh -L (default cipher)", [], dataPort, greetPort)]);
    paths.push(["ssh -L aes128-gcm", () => sshPath("ssh -L aes128-gcm", ["-c", "aes128-gcm@openssh.com"], dataPort, greetPort)]);
  }
  const root = process.env.BENCH_TREE ?? fileURLToPath(new URL("..", import.meta.url));
  // BENCH_COMPARE_TREE=DIR or LABEL=DIR,LABEL=DIR,...: other versions' tunnels, measured first
  for (const entry of (process.env.BENCH_COMPARE_TREE ?? "").split(",").filter(Boolean)) {
    const [label, dir] = entry.includes("=") ? entry.split("=", 2) : ["before", entry];
    const name = `entangle tunnel (${label})`;
    paths.push([name, () => tunnelPath(name, dir, dataPort, greetPort, envWords(process.env[`BENCH_ENV_${label}`]))]);
  }
  paths.push(["entangle tunnel", () => tunnelPath("entangle tunnel", root, dataPort, greetPort)]);
  const only = (process.env.BENCH_PATHS ?? "").split(",").filter(Boolean);
  const selected = paths.filter(([name]) => only.length === 0 || only.some((w) => name.includes(w)));
  if (process.env.BENCH_BULK) {
    const ready: Path[] = [];
    for (const [, setup] of selected) ready.push(await setup());
    return bulkRounds(ready, Number(process.env.BENCH_BULK));
  }
  const results = [];
  for (const [, setup] of selected) results.push(await measure(await setup()));
  const ssh = results.find((r) => r.name.startsWith("ssh -L (default"));
  const gcm = results.find((r) => r.name.startsWith("ssh -L aes128"));
  const fmt = (n: number, d = 0) => n.toFixed(d);
  const ratio = (a: number, b?: number) => (b === undefined ? "-" : `${(a / b).toFixed(2)}x`);
  const mem = (xs: number[]) => (xs.length === 0 ? "-" : xs.map((x) => fmt(x)).join(" + "));
  console.log("");
  console.log(
    "| path | upload MiB/s | download MiB/s | vs ssh default (up/down) | vs ssh aes128-gcm (up/down) | echo RTT p50 / p99 ms, cold; warm | new conn -> first byte p50 / p99 ms, cold; warm | new conn -> first reply p50 ms, cold; warm |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results)
    console.log(
      `| ${r.name} | ${fmt(r.up)} | ${fmt(r.down)} | ${ratio(r.up, ssh?.up)} / ${ratio(r.down, ssh?.down)} | ${ratio(r.up, gcm?.up)} / ${ratio(r.down, gcm?.down)} | ${fmt(r.rtt50, 3)} / ${fmt(r.rtt99, 3)}; ${fmt(r.rttWarm50, 3)} / ${fmt(r.rttWarm99, 3)} | ${fmt(r.fb50, 2)} / ${fmt(r.fb99, 2)}; ${fmt(r.fbWarm50, 2)} / ${fmt(r.fbWarm99, 2)} | ${fmt(r.fr50, 2)}; ${fmt(r.frWarm50, 2)} |`,
    );
  console.log("");
  console.log(
    `| path | req/s, 1 conn | req/s, ${RR_CONNS} conns | vs ssh default (1 / ${RR_CONNS}) | vs ssh aes128-gcm (1 / ${RR_CONNS}) | relays' CPU µs per request (1 / ${RR_CONNS}) | RSS idle MiB (connect + expose side) | RSS peak MiB |`,
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results)
    console.log(
      `| ${r.name} | ${fmt(r.rr1)} | ${fmt(r.rrN)} | ${ratio(r.rr1, ssh?.rr1)} / ${ratio(r.rrN, ssh?.rrN)} | ${ratio(r.rr1, gcm?.rr1)} / ${ratio(r.rrN, gcm?.rrN)} | ${r.idle.length > 0 ? `${fmt(r.us1)} / ${fmt(r.usN)}` : "-"} | ${mem(r.idle)} | ${mem(r.peak)} |`,
    );
  const direct = results.find((r) => r.name === "direct TCP");
  const tun = results.find((r) => r.name === "entangle tunnel");
  if (direct && tun) console.log(`\ntunnel vs direct: upload ${ratio(tun.up, direct.up)}, download ${ratio(tun.down, direct.down)}`);
  console.log(`load average at the end: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill();
    if (tlsFiles) rmSync(tlsFiles.dir, { recursive: true, force: true });
    target.close();
    greeter.close();
    setTimeout(() => process.exit(), 500).unref();
  });
