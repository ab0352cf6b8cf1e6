// Echo round trips through the tunnel and through the plain Node TLS relay (hack/bench-pipe.ts),
// in alternating rounds, each echo recorded with its time: where the slow ones are (issue 10's
// p99 target). Per round and path: N echoes of 64 bytes on a fresh connection, p50 / p99 / max,
// how many took over 1 ms and where in the round they fell; at the end each path's p99 / p50,
// and the relaying processes' RSS.
//
//   node hack/bench-echo.ts
//
// BENCH_ROUNDS (6) rounds of BENCH_ECHOES (2000) echoes; BENCH_BULK_MIB (0): before the rounds,
// that many MiB up and down through each path three times, as npm run bench does before its
// echoes. BENCH_ECHO_AGENT (dist/agent/entangle.mjs) is the agent entry point; BENCH_AGENT_ARGS
// adds Node options to both data agents and both relays; BENCH_ECHO_B="--node-option ..." (and
// BENCH_ECHO_C) adds a tunnel whose agents also get those (e.g. "--min-semi-space-size=8");
// BENCH_ECHO_AGENT_B=ENTRY (and _C) gives that tunnel another agent build (e.g. a bundle made by
// `node hack/build-agent.ts DIR` before a change).
// BENCH_ECHO_TRACE=DIR: every relaying process records its garbage collections (perf_hooks,
// with wall-clock times) to DIR and its stdout to DIR/out-*.txt (e.g. with --trace-gc-nvp), the
// echoes go to DIR/echoes.json, and each slow echo is matched against the GCs that overlap it,
// with each process's GC count, its scavenges' pause p50 and its young generation at the end.
// BENCH_ECHO_SIGNAL=N sends SIGWINCH to the relaying processes before and after round N (for a
// preload of your own, e.g. one that samples allocations over that round alone).
//
// Found with it (issue 10, 2026-11-27): after start-up, the slow echoes (over 1 ms, ~1-3 % of
// them once warm) mostly coincide with a scavenge in one of the two agents: a 64-byte message
// through an agent allocates ~15 KB (a TLS relay process ~2 KB), so an agent whose young
// generation V8 left at 1-4 MiB scavenges every ~100-200 echoes, a 0.5-1 ms pause each.
import { openSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { newToken } from "../lib/p2p/token.ts";
import { freePort } from "../test/helpers/agents.ts";
import { echoStamped, firstByteOnce, listen, median, open, waitForPort } from "./bench-lib.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const ECHOES = Number(process.env.BENCH_ECHOES ?? 2000);
const BULK = Number(process.env.BENCH_BULK_MIB ?? 0);
const SLOW_MS = 1;
const root = fileURLToPath(new URL("..", import.meta.url));
const trace = process.env.BENCH_ECHO_TRACE;
const children: ChildProcess[] = [];
/** the TLS relay's certificate, removed at the end however the run ends */
let tmp: string | undefined;

// 'e' echoes, 'd' sends BULK MiB, 'u' sinks and answers 'k' at the end
const block = Buffer.alloc(1 << 20, 0x5a);
const target = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  s.on("error", () => {});
  s.once("data", (first: Buffer) => {
    const op = String.fromCharCode(first[0]);
    if (op === "e") {
      if (first.length > 1) s.write(first.subarray(1));
      s.pipe(s);
    } else if (op === "d") {
      let left = BULK;
      const pump = () => {
        while (left-- > 0) if (!s.write(block)) return void s.once("drain", pump);
        s.end();
      };
      pump();
    } else {
      s.on("data", () => {});
      s.on("end", () => s.end("k"));
    }
  });
});

const GC_PRELOAD = `
import { PerformanceObserver, constants } from "node:perf_hooks";
import { writeFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";
const kinds = { [constants.NODE_PERFORMANCE_GC_MINOR]: "minor", [constants.NODE_PERFORMANCE_GC_MAJOR]: "major", [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental", [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb" };
const gcs = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) gcs.push([performance.timeOrigin + e.startTime, e.duration, kinds[e.detail?.kind] ?? String(e.detail?.kind)]); }).observe({ entryTypes: ["gc"] });
const save = () => {
  const young = getHeapSpaceStatistics().filter((s) => s.space_name === "new_space")[0];
  gcs.push([0, 0, "new_space", young?.space_size, young?.space_available_size]);
  writeFileSync(process.env.BENCH_GC_FILE, JSON.stringify(gcs));
};
process.on("SIGUSR2", save);
process.on("exit", save);
`;

async function upDown(port: number) {
  const up = await open(port);
  await new Promise<void>((resolve, reject) => {
    up.once("error", reject);
    up.on("data", () => {});
    up.once("end", () => resolve());
    up.write("u");
    let left = BULK;
    const pump = () => {
      while (left-- > 0) if (!up.write(block)) return void up.once("drain", pump);
      up.end();
    };
    pump();
  });
  up.destroy();
  const down = await open(port);
  await new Promise<void>((resolve, reject) => {
    down.on("data", () => {});
    down.once("end", () => resolve());
    down.once("error", reject);
    down.write("d");
  });
  down.destroy();
}

interface Path {
  name: string;
  port: number;
  procs: Array<{ role: string; child: ChildProcess; gcFile?: string }>;
}

function spawnTraced(name: string, role: string, args: string[], env: NodeJS.ProcessEnv, dir: string | undefined, own: string[] = []) {
  const extra = [...(process.env.BENCH_AGENT_ARGS ?? "").split(" ").filter(Boolean), ...own];
  const gcFile = dir ? join(dir, `gc-${name.replaceAll(" ", "_")}-${role}.json`) : undefined;
  const pre = dir ? ["--import", join(dir, "gc-preload.mjs")] : [];
  const out = dir ? openSync(join(dir, `out-${name.replaceAll(" ", "_")}-${role}.txt`), "w") : "ignore";
  const child = spawn(process.execPath, [...pre, ...extra, ...args], {
    stdio: ["ignore", out, "inherit"],
    env: { ...env, ...(gcFile ? { BENCH_GC_FILE: gcFile } : {}) },
    cwd: root,
  });
  children.push(child);
  return { role, child, gcFile };
}

async function tunnel(dataPort: number, name = "tunnel", own: string[] = [], agent?: string): Promise<Path> {
  const env = {
    ...process.env,
    ENTANGLE_FORBID_PUBLIC_BOOTSTRAP: "1",
    ENTANGLE_BOOTSTRAP: "none",
    ENTANGLE_NETWORK_TOKEN: newToken(),
    ENTANGLE_LOG_LEVEL: "warn",
  };
  const entry = agent ?? process.env.BENCH_ECHO_AGENT ?? join(root, "dist/agent/entangle.mjs");
  const [p2p, port] = [await freePort(), await freePort()];
  const expose = spawnTraced(
    name,
    "expose",
    [entry, "agent", "expose", "--service", "data", "--target", `127.0.0.1:${dataPort}`, "--p2p-listen", `127.0.0.1:${p2p}`],
    env,
    trace,
    own,
  );
  const conn = spawnTraced(
    name,
    "connect",
    [
      entry,
      "agent",
      "connect",
      "--service",
      "data",
      "--listen",
      `127.0.0.1:${port}`,
      "--peer",
      `127.0.0.1:${p2p}`,
      "--p2p-listen",
      "127.0.0.1:0",
      "--health-listen",
      "127.0.0.1:0",
    ],
    env,
    trace,
    own,
  );
  await waitForPort(port);
  for (let i = 0; i < 100; i++) {
    try {
      await firstByteOnce(port, "e!");
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { name, port, procs: [conn, expose] };
}

async function tlsPipe(dataPort: number, dir: string): Promise<Path> {
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  if (!existsSync(cert))
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
      { stdio: "ignore" },
    );
  const [inner, outer] = [await freePort(), await freePort()];
  const script = join(root, "hack/bench-pipe.ts");
  const b = spawnTraced("tls", "expose", [script, String(inner), `127.0.0.1:${dataPort}`, "in=tls", "out=tcp", cert, key], process.env, trace);
  const a = spawnTraced("tls", "connect", [script, String(outer), `127.0.0.1:${inner}`, "in=tcp", "out=tls"], process.env, trace);
  await waitForPort(inner);
  await waitForPort(outer);
  return { name: "node pipe TLS", port: outer, procs: [a, b] };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
/** utime and stime of a process so far, in seconds (/proc/PID/stat, ticks of 10 ms) */
const userSys = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [Number(f[11]) / 100, Number(f[12]) / 100];
};
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

async function main() {
  const dataPort = await listen(target);
  tmp = mkdtempSync(join(tmpdir(), "entangle-bench-echo."));
  if (trace) writeFileSync(join(trace, "gc-preload.mjs"), GC_PRELOAD);
  const paths = [await tunnel(dataPort), await tlsPipe(dataPort, tmp)];
  // BENCH_ECHO_B="--node-option ..." (and BENCH_ECHO_C): more tunnels whose agents get those options
  for (const x of ["B", "C"]) {
    const own = process.env[`BENCH_ECHO_${x}`];
    const agent = process.env[`BENCH_ECHO_AGENT_${x}`];
    if (own !== undefined || agent !== undefined) paths.push(await tunnel(dataPort, `tunnel ${x}`, (own ?? "").split(" ").filter(Boolean), agent));
  }
  if (BULK > 0) for (const p of paths) for (let i = 0; i < 3; i++) await upDown(p.port);
  const all = new Map<string, Array<Array<[number, number]>>>(paths.map((p) => [p.name, []]));
  const cpu = new Map<string, number[][][]>(paths.map((p) => [p.name, []]));
  process.stderr.write(`echo: ${ROUNDS} rounds of ${ECHOES} echoes per path, load ${load()}\n`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of round % 2 === 0 ? paths : [...paths].reverse()) {
      // BENCH_ECHO_SIGNAL=N: the relaying processes get SIGWINCH before and after round N
      // (e.g. for a preload that samples allocations over that round alone)
      const signal = Number(process.env.BENCH_ECHO_SIGNAL) === round + 1;
      if (signal) for (const { child } of p.procs) child.kill("SIGWINCH");
      if (signal) await new Promise((r) => setTimeout(r, 200));
      const before = p.procs.map(({ child }) => userSys(child.pid!));
      const [e] = await echoStamped(p.port, [ECHOES], "e");
      const used = p.procs.map(({ child }, i) => userSys(child.pid!).map((t, j) => ((t - before[i][j]) * 1e6) / ECHOES));
      cpu.get(p.name)!.push(used);
      if (signal) for (const { child } of p.procs) child.kill("SIGWINCH");
      all.get(p.name)!.push(e);
      const rtt = e.map(([, r]) => r);
      const slow = e.flatMap(([, r], i) => (r > SLOW_MS ? [i] : []));
      process.stderr.write(
        `  round ${round + 1} (load ${load().split(" ")[0]}) ${p.name}: p50 ${pct(rtt, 50).toFixed(3)} p99 ${pct(rtt, 99).toFixed(3)} max ${Math.max(...rtt).toFixed(2)} ms; ` +
          `${slow.length} over ${SLOW_MS} ms at ${slow.slice(0, 30).join(",")}${slow.length > 30 ? ",..." : ""}; ` +
          `CPU µs per echo (user + system) ${used.map(([u, k]) => `${u.toFixed(0)} + ${k.toFixed(0)}`).join(" / ")}\n`,
      );
    }
  }
  // p99 pooled over all rounds, and the median of the rounds' p99s: one round disturbed by other
  // work on the host moves the pooled p99 a lot, the median little
  console.log(
    `| path | echo p50 ms | p99 ms, pooled / median round | p99 / p50 (pooled / median round) | over ${SLOW_MS} ms per 1000 | CPU µs per echo, user + system, median round (connect / expose side) |`,
  );
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const [name, rounds] of all) {
    const rtt = rounds.flat().map(([, r]) => r);
    const [p50, p99] = [pct(rtt, 50), pct(rtt, 99)];
    const p99Round = median(rounds.map((e) => e.map(([, r]) => r)).map((xs) => pct(xs, 99)));
    const per = [0, 1].map((i) => [0, 1].map((j) => median(cpu.get(name)!.map((r) => r[i][j])).toFixed(0)).join(" + ")).join(" / ");
    console.log(
      `| ${name} | ${p50.toFixed(3)} | ${p99.toFixed(3)} / ${p99Round.toFixed(3)} | ${(p99 / p50).toFixed(1)} / ${(p99Round / p50).toFixed(1)} | ${((rtt.filter((r) => r > SLOW_MS).length * 1000) / rtt.length).toFixed(1)} | ${per} |`,
    );
  }
  console.log(`load average: ${load()}`);
  const kib = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
  for (const p of paths)
    console.log(
      `${p.name}: RSS now / peak ${p.procs.map(({ child }) => `${kib(child.pid!, "VmRSS").toFixed(0)} / ${kib(child.pid!, "VmHWM").toFixed(0)}`).join(" + ")} MiB`,
    );
  if (trace) {
    for (const p of paths) for (const { child } of p.procs) child.kill("SIGUSR2");
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(join(trace, "echoes.json"), JSON.stringify(Object.fromEntries(all)));
    for (const p of paths) {
      const gcs = p.procs.map(({ role, gcFile }) => {
        // a process that did not answer SIGUSR2 in time left no file
        const list = (existsSync(gcFile!) ? JSON.parse(readFileSync(gcFile!, "utf8")) : [[0, 0, "new_space"]]) as Array<
          [number, number, string, number?, number?]
        >;
        const young = list.pop()!;
        console.log(`${p.name} ${role}: new space ${((young[3] ?? 0) / 1048576).toFixed(1)} MiB at the end`);
        return { role, list };
      });
      const slow = all
        .get(p.name)!
        .flat()
        .filter(([, r]) => r > SLOW_MS);
      let matched = 0;
      const byKind = new Map<string, number>();
      for (const [t0, r] of slow) {
        const hit = gcs.flatMap(({ role, list }) => list.filter(([s, d]) => s < t0 + r && s + d > t0).map(([, d, k]) => `${role} ${k} ${d.toFixed(2)}`));
        if (hit.length > 0) matched++;
        for (const h of hit) byKind.set(h.split(" ").slice(0, 2).join(" "), (byKind.get(h.split(" ").slice(0, 2).join(" ")) ?? 0) + 1);
      }
      const counts = gcs
        .map(({ role, list }) => {
          const minor = list.filter(([, , k]) => k === "minor").map(([, d]) => d);
          return `${role} ${list.length} GCs (${list.length - minor.length} not minor; minor p50 ${pct(minor, 50)?.toFixed(2)} ms, max ${Math.max(...minor).toFixed(2)})`;
        })
        .join(", ");
      console.log(
        `${p.name}: ${slow.length} echoes over ${SLOW_MS} ms, ${matched} overlap a GC (${[...byKind].map(([k, v]) => `${k}: ${v}`).join(", ")}); ${counts}`,
      );
    }
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of children) c.kill("SIGINT");
    target.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 1000));
    for (const c of children) c.kill();
    process.exit();
  });
