// Focused, paired benchmark of small requests and replies through the tunnel (issue 10): several
// agent builds side by side, measured in alternating rounds so that load from other work on the
// host falls on all of them alike.
//
//   node hack/bench-rr.ts [LABEL=ENTRY ...]
//
// ENTRY is an agent entry point: dist/agent/entangle.mjs (the bundle, the default "bundle") or
// bin/entangle.js (the TypeScript sources, the default "sources"). Per round and build: request
// rate over 1 and BENCH_RR_CONNS (50) connections (BENCH_RR requests each, default 5000), the two
// agents' CPU µs per request (utime+stime), echo p50, new connection -> first byte p50 (the
// server speaks first) and -> first reply p50 (the client speaks first, as HTTP does).
// BENCH_ROUNDS (3) rounds; the medians are printed. BENCH_AGENT_ARGS adds Node options to the
// data agents (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). BENCH_PER_AGENT=1 prints each agent's
// CPU µs per request over one connection; BENCH_PERF=DIR records both agents with `perf record`
// (cpu-clock, BENCH_PERF_HZ samples per second, 2000) and BENCH_STRACE=DIR counts their system
// calls, both over the first round's one-connection run (with BENCH_ONLY_CONNECTS, over its new
// connections; BENCH_TRACE_ROUND=N records round N+1 instead, e.g. a warm one). BENCH_CONNECTS
// (100) new connections per round are timed; the last column is both
// data agents' CPU µs per new connection over the first-reply run, clients back to back
// (BENCH_PER_AGENT=1 prints it per agent, with its read and write system calls per connection:
// /proc/PID/io's syscr and syscw, which count eventfd wake-ups too). BENCH_ONLY_CONNECTS=1 skips
// the request-rate and echo runs (e.g. to profile new connections alone). BENCH_ENV_<LABEL>="K=V ..." and
// BENCH_ARGS_<LABEL>="--node-option ..." apply to one build's data agents only (e.g. a=X b=X with
// BENCH_ENV_b="MALLOC_ARENA_MAX=2"); BENCH_AGENT_STDOUT=DIR keeps their stdout (e.g. --trace-opt).
// The data agents' peak RSS (VmHWM) is printed at the end.
import { openSync, readdirSync, readFileSync } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { newToken } from "../lib/p2p/token.ts";
import { freePort } from "../test/helpers/agents.ts";
import { cpuSeconds, echo, envWords, firstByte, firstByteOnce, listen, median, requestRate, waitForPort } from "./bench-lib.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RR = Number(process.env.BENCH_RR ?? 5000);
const CONNS = Number(process.env.BENCH_RR_CONNS ?? 50);
const ECHOES = Number(process.env.BENCH_ECHOES ?? 1000);
const CONNECTS = Number(process.env.BENCH_CONNECTS ?? 100);
/** the round BENCH_PERF and BENCH_STRACE record (0: the first; a later one is warm) */
const TRACE_ROUND = Number(process.env.BENCH_TRACE_ROUND ?? 0);
const root = fileURLToPath(new URL("..", import.meta.url));
const children: ChildProcess[] = [];

const echoServer = createServer({ noDelay: true, allowHalfOpen: true }, (s) => (s.on("error", () => {}), s.pipe(s)));
const greeter = createServer({ noDelay: true }, (s) => (s.on("error", () => {}), s.end("!")));

/** utime+stime per thread name of each process (BENCH_THREADS=1 prints them per round). */
function threadTicks(procs: ChildProcess[]): Map<string, number> {
  const m = new Map<string, number>();
  procs.forEach((c, i) => {
    for (const t of readdirSync(`/proc/${c.pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${c.pid}/task/${t}/stat`, "utf8");
        const name = `${i}:${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}`;
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        m.set(name, (m.get(name) ?? 0) + Number(f[11]) + Number(f[12]));
      } catch {
        // the thread ended
      }
    }
  });
  return m;
}

/** read- and write-like system calls of a process so far (/proc/PID/io: syscr, syscw) */
function syscalls(c: ChildProcess): [number, number] {
  const io = readFileSync(`/proc/${c.pid}/io`, "utf8");
  return [Number(/syscr: (\d+)/.exec(io)?.[1]), Number(/syscw: (\d+)/.exec(io)?.[1])];
}

interface Build {
  label: string;
  data: number;
  greet: number;
  procs: ChildProcess[];
}

async function start(label: string, entry: string, echoPort: number, greetPort: number): Promise<Build> {
  // never the public libp2p bootstrap peers (hack/bench.sh sets the same for bench.ts)
  const ownArgs = (process.env[`BENCH_ARGS_${label}`] ?? "").split(" ").filter(Boolean);
  const env = {
    ...process.env,
    ENTANGLE_FORBID_PUBLIC_BOOTSTRAP: "1",
    ENTANGLE_BOOTSTRAP: process.env.ENTANGLE_BOOTSTRAP ?? "none",
    ENTANGLE_NETWORK_TOKEN: newToken(),
    ENTANGLE_LOG_LEVEL: "warn",
  };
  const nodeArgs = (process.env.BENCH_AGENT_ARGS ?? "").split(" ").filter(Boolean);
  const [p2pA, p2pB, a, b] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const dataEnv = { ...env, ...envWords(process.env[`BENCH_ENV_${label}`]) };
  const run = (args: string[], data = false) => {
    // BENCH_AGENT_STDOUT=DIR: a data agent's stdout goes to DIR/LABEL-N.txt
    const out = data && process.env.BENCH_AGENT_STDOUT ? openSync(`${process.env.BENCH_AGENT_STDOUT}/${label}-${children.length}.txt`, "w") : "ignore";
    const c = spawn(process.execPath, data ? [...ownArgs, ...args] : args, { stdio: ["ignore", out, "inherit"], env: data ? dataEnv : env, cwd: root });
    children.push(c);
    return c;
  };
  const common = ["--p2p-listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"];
  const expose = run(
    [...nodeArgs, entry, "agent", "expose", "--service", "data", "--target", `127.0.0.1:${echoPort}`, "--p2p-listen", `127.0.0.1:${p2pA}`],
    true,
  );
  const conn = run([...nodeArgs, entry, "agent", "connect", "--service", "data", "--listen", `127.0.0.1:${a}`, "--peer", `127.0.0.1:${p2pA}`, ...common], true);
  run([entry, "agent", "expose", "--service", "greet", "--target", `127.0.0.1:${greetPort}`, "--p2p-listen", `127.0.0.1:${p2pB}`]);
  run([entry, "agent", "connect", "--service", "greet", "--listen", `127.0.0.1:${b}`, "--peer", `127.0.0.1:${p2pB}`, ...common]);
  await waitForPort(a);
  await waitForPort(b);
  for (let i = 0; i < 100; i++) {
    try {
      await firstByteOnce(b);
      await requestRate(a, 1, { count: RR });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { label, data: a, greet: b, procs: [conn, expose] };
}

async function main() {
  const specs = process.argv.slice(2).map((a) => a.split("=", 2) as [string, string]);
  if (specs.length === 0) specs.push(["bundle", "dist/agent/entangle.mjs"], ["sources", "bin/entangle.js"]);
  const echoPort = await listen(echoServer);
  const greetPort = await listen(greeter);
  const builds: Build[] = [];
  for (const [label, entry] of specs) builds.push(await start(label, entry, echoPort, greetPort));
  const rows = new Map<string, Array<number[]>>(builds.map((b) => [b.label, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // alternate the order so neither build always runs first
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const b of order) {
      const threads = threadTicks(b.procs);
      // BENCH_STRACE=DIR: system calls of both agents over the one-connection run, first round
      const tracers: ChildProcess[] =
        process.env.BENCH_STRACE && round === TRACE_ROUND
          ? b.procs.map((c, i) =>
              spawn("strace", ["-c", "-f", "-p", String(c.pid), "-o", `${process.env.BENCH_STRACE}/${b.label}-${i ? "expose" : "connect"}.txt`], {
                stdio: "ignore",
              }),
            )
          : [];
      // BENCH_PERF=DIR: `perf record` (cpu-clock, call graphs) of both agents over the same run;
      // add "--perf-basic-prof" to BENCH_AGENT_ARGS for JavaScript frames (the agents then leave
      // /tmp/perf-PID.map and isolate-*-v8.log files in the working directory: remove them after)
      if (process.env.BENCH_PERF && round === TRACE_ROUND)
        for (const [i, c] of b.procs.entries())
          tracers.push(
            spawn(
              "perf",
              [
                "record",
                "-e",
                "cpu-clock",
                "-F",
                process.env.BENCH_PERF_HZ ?? "2000",
                "-g",
                "-p",
                String(c.pid),
                "-o",
                `${process.env.BENCH_PERF}/${b.label}-${i ? "expose" : "connect"}.data`,
              ],
              {
                stdio: "ignore",
              },
            ),
          );
      if (tracers.length > 0) await new Promise((r) => setTimeout(r, 1000));
      const only = Boolean(process.env.BENCH_ONLY_CONNECTS);
      let cpu = cpuSeconds(b.procs);
      // BENCH_PER_AGENT=1: CPU µs per request of each agent (connect / expose) over one connection
      const each = b.procs.map((c) => cpuSeconds([c]));
      const r1 = only ? NaN : (await requestRate(b.data, 1, { count: RR })).rate;
      const us1 = ((cpuSeconds(b.procs) - cpu) * 1e6) / RR;
      if (process.env.BENCH_PER_AGENT && !only) {
        const per = b.procs.map((c, i) => (((cpuSeconds([c]) - each[i]) * 1e6) / RR).toFixed(0));
        process.stderr.write(`    ${b.label} µs per request over 1 connection, connect / expose: ${per.join(" / ")}\n`);
      }
      const stopTracers = async () => {
        for (const t of tracers) t.kill("SIGINT");
        await Promise.all(tracers.map((t) => new Promise((r) => t.once("exit", r))));
      };
      // BENCH_ONLY_CONNECTS: they record the new connections' run instead
      if (!only) await stopTracers();
      cpu = cpuSeconds(b.procs);
      const rN = only ? NaN : (await requestRate(b.data, CONNS, { count: RR })).rate;
      const usN = ((cpuSeconds(b.procs) - cpu) * 1e6) / RR;
      const e = only ? NaN : median(await echo(b.data, ECHOES));
      const fb = median(await firstByte(b.greet, CONNECTS));
      // the client speaks first (its byte is echoed); the data agents' CPU per new connection
      const before = b.procs.map((c) => cpuSeconds([c]));
      const ioBefore = b.procs.map(syscalls);
      const fr = median(await firstByte(b.data, CONNECTS, "?"));
      const perConn = b.procs.map((c, i) => ((cpuSeconds([c]) - before[i]) * 1e6) / CONNECTS);
      const usC = perConn[0] + perConn[1];
      if (only) await stopTracers();
      if (process.env.BENCH_PER_AGENT)
        process.stderr.write(
          `    ${b.label} µs per new connection, connect / expose: ${perConn.map((x) => x.toFixed(0)).join(" / ")}; reads + writes per new connection: ${b.procs
            .map((c, i) =>
              syscalls(c)
                .map((n, j) => ((n - ioBefore[i][j]) / CONNECTS).toFixed(2))
                .join(" + "),
            )
            .join(" / ")}\n`,
        );
      if (process.env.BENCH_THREADS) {
        const after = threadTicks(b.procs);
        const diff = [...after].map(([k, v]) => `${k} ${v - (threads.get(k) ?? 0)}`).filter((x) => !x.endsWith(" 0"));
        process.stderr.write(`    ${b.label} threads (ticks of 10 ms): ${diff.join(", ")}\n`);
      }
      rows.get(b.label)!.push([r1, rN, us1, usN, e, fb, fr, usC]);
      process.stderr.write(
        `  round ${round + 1} ${b.label}: ${r1.toFixed(0)} / ${rN.toFixed(0)} req/s, ${us1.toFixed(0)} / ${usN.toFixed(0)} µs, echo p50 ${e.toFixed(3)} ms, first byte p50 ${fb.toFixed(2)} ms, first reply p50 ${fr.toFixed(2)} ms, ${usC.toFixed(0)} µs per new connection\n`,
      );
    }
  }
  console.log(
    `| build | req/s 1 / ${CONNS} conns | CPU µs per request 1 / ${CONNS} | echo p50 ms | first byte p50 ms | first reply p50 ms | CPU µs per new connection |`,
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const [label, rs] of rows) {
    const m = (i: number) => median(rs.map((r) => r[i]));
    console.log(
      `| ${label} | ${m(0).toFixed(0)} / ${m(1).toFixed(0)} | ${m(2).toFixed(0)} / ${m(3).toFixed(0)} | ${m(4).toFixed(3)} | ${m(5).toFixed(2)} | ${m(6).toFixed(2)} | ${m(7).toFixed(0)} |`,
    );
  }
  // peak RSS of each build's data agents (connect + expose), as the kernel kept it (VmHWM)
  const hwm = (c: ChildProcess) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${c.pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;
  for (const b of builds) console.log(`${b.label}: peak RSS ${b.procs.map((c) => hwm(c).toFixed(0)).join(" + ")} MiB (connect + expose)`);
  console.log(`load average: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of children) c.kill("SIGINT");
    echoServer.close();
    greeter.close();
    await new Promise((r) => setTimeout(r, 1500));
    for (const c of children) c.kill();
    process.exit();
  });
