// Soak: `npm run soak -- --minutes N [--interval S] [--log-dir DIR]`.
// Two real agent processes (expose + connect) on 127.0.0.1 and a load generator that runs a
// steady, mixed, bounded load through the tunnel for N minutes, verifying every byte:
//   - churn: ~8 new connections a second, each echoing 64 B-16 KiB (compared byte for byte),
//   - 4 long-lived connections doing a ping-pong round every 500 ms, replaced every 2-6 minutes,
//   - one bulk transfer every 15 s, 4-16 MiB, alternately up (the target replies the sha256 it
//     received) and down (the target sends random bytes and records their sha256 here).
// Every interval it prints, per agent, RSS, heap, open file descriptors (/proc/PID/fd), open
// tunnel streams, event-loop delay p99/max over the interval (the agents' /metrics:
// monitorEventLoopDelay, reset at each scrape) and warn/error log lines; at the end a summary
// (start vs end RSS, growth per hour, errors, bytes and connections verified). Exit code 1 on
// any verification error or a dead agent. Load is bounded in rate, size and concurrency
// (a few percent of one core); nothing leaves 127.0.0.1.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { createWriteStream, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
// no soak may reach the public libp2p bootstrap peers
import "../test/helpers/offline.ts";
import { newToken } from "../lib/p2p/token.ts";

const { values: opts } = parseArgs({
  options: {
    minutes: { type: "string", default: "60" },
    interval: { type: "string" },
    "log-dir": { type: "string" },
  },
});
const minutes = Number(opts.minutes);
if (!(minutes > 0 && minutes <= 24 * 60)) throw new Error("--minutes must be between 0 and 1440");
const intervalS = Number(opts.interval ?? Math.min(60, Math.max(10, Math.round((minutes * 60) / 30))));
const logDir = opts["log-dir"] ?? mkdtempSync("/tmp/entangle-soak-");
const entangle = fileURLToPath(new URL("../bin/entangle.js", import.meta.url));
const t0 = Date.now();

const CHURN_PER_S = 8;
const CHURN_CONCURRENCY = 16;
const PERSISTENT = 4;
const PING_MS = 500;
const BULK_EVERY_MS = 15_000;
const OP_TIMEOUT_MS = 60_000;

// ---- output ------------------------------------------------------------------------------
const elapsed = () => {
  const s = Math.round((Date.now() - t0) / 1000);
  return `${String(Math.floor(s / 60)).padStart(4)}m${String(s % 60).padStart(2, "0")}s`;
};
const say = (line: string) => console.log(`[${elapsed()}] ${line}`);
const mib = (b: number) => (b / 1048576).toFixed(1);

// ---- the target service ------------------------------------------------------------------
/** Hashes of downloads by id, recorded by the target when it sends them. */
const downloads = new Map<string, { hash: string; size: number }>();
/**
 * First byte says what to do: 'E' echo everything back until EOF; 'U' hash everything after it
 * and reply the hex sha256 at EOF; 'D' + 8-byte id + 4-byte size: send `size` random bytes.
 */
const target: Server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  s.on("error", () => {});
  let head = Buffer.alloc(0);
  const onHead = (d: Buffer) => {
    head = Buffer.concat([head, d]);
    const op = String.fromCharCode(head[0]);
    if (op === "E") {
      s.off("data", onHead);
      if (head.length > 1) s.write(head.subarray(1));
      s.pipe(s);
    } else if (op === "U") {
      s.off("data", onHead);
      const h = createHash("sha256").update(head.subarray(1));
      s.on("data", (c: Buffer) => h.update(c));
      s.on("end", () => s.end(h.digest("hex")));
    } else if (op === "D") {
      if (head.length < 13) return;
      s.off("data", onHead);
      const id = head.subarray(1, 9).toString("hex");
      const size = head.readUInt32BE(9);
      const data = randomBytes(size);
      downloads.set(id, { hash: createHash("sha256").update(data).digest("hex"), size });
      s.end(data);
    } else s.destroy();
  };
  s.on("data", onHead);
});

// ---- agents ------------------------------------------------------------------------------
interface Agent {
  name: string;
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  warn: number;
  error: number;
  lastProblems: string[];
  died?: string;
  health?: number;
}

function startAgent(name: string, args: string[], env: Record<string, string>): Agent {
  const child = spawn(process.execPath, [entangle, ...args, "--health-listen", "127.0.0.1:0"], {
    // ENTANGLE_PARENT_PID: the agents exit should this script die without stopping them
    env: { ...process.env, EDGEVPNTOKEN: undefined, ENTANGLE_LOG_LEVEL: "info", ENTANGLE_PARENT_PID: String(process.pid), ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const agent: Agent = { name, child, lines: [], warn: 0, error: 0, lastProblems: [] };
  const file = createWriteStream(join(logDir, `${name}.log`));
  child.stderr!.pipe(file);
  createInterface({ input: child.stderr! }).on("line", (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { level: 50, msg: text };
    }
    const level = Number(line.level ?? 30);
    if (level >= 50) agent.error++;
    else if (level >= 40) agent.warn++;
    if (level >= 40) agent.lastProblems = [...agent.lastProblems.slice(-4), `${line.msg}`];
    if (agent.lines.length < 50) agent.lines.push(line); // start-up lines only: bounded
  });
  child.once("exit", (code, signal) => (agent.died = `exited (${signal ?? code})`));
  return agent;
}

async function waitLine(agent: Agent, msg: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = agent.lines.find((x) => x.msg === msg);
    if (l) return l;
    if (agent.died || Date.now() > deadline) throw new Error(`${agent.name}: no "${msg}" (${agent.died ?? "timeout"}); log in ${logDir}`);
    await sleep(50);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- measurements ------------------------------------------------------------------------
interface Sample {
  t: number;
  rss: number;
  heap: number;
  fds: number;
  streams: number;
  lagP99: number;
  lagMax: number;
  cpu: number;
}

async function metrics(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function sample(a: Agent): Promise<Sample> {
  const pid = a.child.pid!;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const m = await metrics(a.health!);
  return {
    t: Date.now(),
    rss,
    fds,
    heap: m.get("entangle_process_nodejs_heap_size_used_bytes") ?? NaN,
    streams: m.get("entangle_tunnel_active_streams") ?? NaN,
    lagP99: (m.get("entangle_process_nodejs_eventloop_lag_p99_seconds") ?? NaN) * 1000,
    lagMax: (m.get("entangle_process_nodejs_eventloop_lag_max_seconds") ?? NaN) * 1000,
    cpu: m.get("entangle_process_process_cpu_seconds_total") ?? NaN,
  };
}

// ---- load --------------------------------------------------------------------------------
const stats = { churn: 0, rounds: 0, persistent: 0, bulkUp: 0, bulkDown: 0, bytes: 0, inFlight: 0 };
const errors = new Map<string, number>();
const firstErrors: string[] = [];
function fail(kind: string, detail: string): void {
  errors.set(kind, (errors.get(kind) ?? 0) + 1);
  if (firstErrors.length < 20) firstErrors.push(`[${elapsed()}] ${kind}: ${detail}`);
}
let port = 0;
let running = true;
let end = t0 + minutes * 60_000;

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", allowHalfOpen: true, noDelay: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Writes `head` + `body`, half-closes, resolves with everything received until EOF. */
function exchange(head: Buffer, body: Buffer): Promise<Buffer> {
  return open().then(
    (s) =>
      new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const timer = setTimeout(() => (s.destroy(), reject(new Error("timeout"))), OP_TIMEOUT_MS);
        s.on("data", (d: Buffer) => chunks.push(d));
        s.once("end", () => (clearTimeout(timer), s.destroy(), resolve(Buffer.concat(chunks))));
        s.once("error", (err: NodeJS.ErrnoException) => (clearTimeout(timer), reject(new Error(err.code ?? err.message))));
        s.write(head);
        s.end(body);
      }),
  );
}

async function churnOne(): Promise<void> {
  const payload = randomBytes(randomInt(64, 16 * 1024 + 1));
  stats.inFlight++;
  try {
    const back = await exchange(Buffer.from("E"), payload);
    if (!back.equals(payload)) fail("echo mismatch", `sent ${payload.length} got ${back.length}`);
    else {
      stats.churn++;
      stats.bytes += 2 * payload.length;
    }
  } catch (err) {
    fail("churn " + (err as Error).message, "");
  } finally {
    stats.inFlight--;
  }
}

async function churnLoop(): Promise<void> {
  const gap = 1000 / CHURN_PER_S;
  while (running) {
    if (stats.inFlight < CHURN_CONCURRENCY) void churnOne();
    await sleep(gap * (0.5 + Math.random()));
  }
}

/** One long-lived connection: ping-pong rounds until its lifetime ends, then a clean close. */
async function persistentOne(): Promise<void> {
  const lifetime = randomInt(120_000, 360_000);
  const until = Date.now() + Math.min(lifetime, Math.max(5_000, (minutes * 60_000) / 4));
  let s: Socket;
  try {
    s = await open();
  } catch (err) {
    return fail("persistent open " + (err as Error).message, "");
  }
  let pending: Buffer[] = [];
  let waiter: (() => void) | undefined;
  let broken: string | undefined;
  s.on("data", (d: Buffer) => (pending.push(d), waiter?.()));
  s.once("error", (err: NodeJS.ErrnoException) => ((broken = err.code ?? err.message), waiter?.()));
  s.once("end", () => ((broken ??= "early EOF"), waiter?.()));
  s.write("E");
  try {
    while (running && Date.now() < until && broken === undefined) {
      const msg = randomBytes(randomInt(16, 2049));
      s.write(msg);
      const deadline = Date.now() + OP_TIMEOUT_MS;
      while (broken === undefined && pending.reduce((n, b) => n + b.length, 0) < msg.length && Date.now() < deadline) {
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 1_000);
        });
      }
      const got = Buffer.concat(pending);
      pending = [];
      if (broken !== undefined) break;
      if (!got.equals(msg)) {
        fail(got.length < msg.length ? "persistent timeout" : "persistent mismatch", `sent ${msg.length} got ${got.length}`);
        break;
      }
      stats.rounds++;
      stats.bytes += 2 * msg.length;
      await sleep(PING_MS);
    }
    if (broken !== undefined) fail("persistent " + broken, "");
    else stats.persistent++;
  } finally {
    s.end();
    s.destroy();
  }
}

async function persistentLoop(): Promise<void> {
  while (running) await persistentOne();
}

async function bulkLoop(): Promise<void> {
  let up = true;
  while (running) {
    await sleep(BULK_EVERY_MS);
    if (!running) break;
    const size = randomInt(4, 17) * 1048576;
    stats.inFlight++;
    try {
      if (up) {
        const data = randomBytes(size);
        const reply = (await exchange(Buffer.from("U"), data)).toString();
        if (reply !== createHash("sha256").update(data).digest("hex")) fail("upload hash mismatch", `${size} bytes`);
        else {
          stats.bulkUp++;
          stats.bytes += size;
        }
      } else {
        const id = randomBytes(8);
        const head = Buffer.alloc(13);
        head.write("D");
        id.copy(head, 1);
        head.writeUInt32BE(size, 9);
        const data = await exchange(head, Buffer.alloc(0));
        const sent = downloads.get(id.toString("hex"));
        downloads.delete(id.toString("hex"));
        if (sent === undefined) fail("download never reached the target", "");
        else if (data.length !== sent.size || createHash("sha256").update(data).digest("hex") !== sent.hash)
          fail("download hash mismatch", `expected ${sent.size} bytes, got ${data.length}`);
        else {
          stats.bulkDown++;
          stats.bytes += size;
        }
      }
    } catch (err) {
      fail(`bulk ${up ? "up" : "down"} ${(err as Error).message}`, `${size} bytes`);
    } finally {
      stats.inFlight--;
    }
    up = !up;
  }
}

// ---- run ---------------------------------------------------------------------------------
function slope(points: Sample[], key: "rss" | "heap"): number {
  // least squares, bytes per hour
  const n = points.length;
  if (n < 2) return NaN;
  const xs = points.map((p) => (p.t - points[0].t) / 3_600_000);
  const ys = points.map((p) => p[key]);
  const mx = xs.reduce((a, b) => a + b) / n;
  const my = ys.reduce((a, b) => a + b) / n;
  const num = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0);
  const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return num / den;
}

async function main(): Promise<void> {
  await new Promise<void>((r) => target.listen(0, "127.0.0.1", () => r()));
  const targetPort = (target.address() as { port: number }).port;
  const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
  const p2p = ["--p2p-listen", "127.0.0.1:0"];
  const expose = startAgent("expose", ["agent", "expose", "--service", "soak", "--target", `127.0.0.1:${targetPort}`, ...p2p], env);
  const started = await waitLine(expose, "agent started");
  const addr = (started.addrs as string[]).find((a) => !a.includes("p2p-circuit"))!;
  const conn = startAgent("connect", ["agent", "connect", "--service", "soak", "--listen", "127.0.0.1:0", ...p2p, "--peer", addr], env);
  port = Number(
    String((await waitLine(conn, "accepting connections")).listen)
      .split(":")
      .pop(),
  );
  const agents = [expose, conn];
  for (const a of agents)
    a.health = Number(
      String((await waitLine(a, "health endpoint listening")).health)
        .split(":")
        .pop(),
    );
  await waitLine(conn, "member authenticated");
  say(`agents up: expose pid ${expose.child.pid}, connect pid ${conn.child.pid}; logs in ${logDir}`);
  say(
    `load for ${minutes} min: ~${CHURN_PER_S} new connections/s (echo 64 B-16 KiB), ${PERSISTENT} long-lived ping-pong connections, 4-16 MiB bulk every ${BULK_EVERY_MS / 1000} s; sample every ${intervalS} s`,
  );
  const samples = new Map<string, Sample[]>(agents.map((a) => [a.name, []]));
  const idle = new Map<string, Sample>();
  for (const a of agents) idle.set(a.name, await sample(a));
  const header = "agent     rss MiB  heap MiB  fds  streams  loop p99/max ms  warn error  cpu %";
  say(header);
  const prev = new Map(idle);
  const row = (a: Agent, s: Sample) => {
    const p = prev.get(a.name)!;
    prev.set(a.name, s);
    const cpu = p === s ? "" : (((s.cpu - p.cpu) * 100_000) / Math.max(1, s.t - p.t)).toFixed(1).padStart(6);
    say(
      `${a.name.padEnd(8)} ${mib(s.rss).padStart(8)} ${mib(s.heap).padStart(9)} ${String(s.fds).padStart(4)} ${String(s.streams).padStart(8)}  ${s.lagP99.toFixed(1).padStart(7)} / ${s.lagMax.toFixed(1).padEnd(7)} ${String(a.warn).padStart(4)} ${String(a.error).padStart(5)} ${cpu}`,
    );
  };
  for (const a of agents) row(a, idle.get(a.name)!);

  const loops = [churnLoop(), bulkLoop(), ...Array.from({ length: PERSISTENT }, persistentLoop)];
  let lastConns = 0;
  while (Date.now() < end && agents.every((a) => !a.died)) {
    const next = Date.now() + Math.min(intervalS * 1000, Math.max(0, end - Date.now()));
    while (Date.now() < Math.min(next, end)) await sleep(250);
    for (const a of agents) {
      if (a.died) continue;
      try {
        const s = await sample(a);
        samples.get(a.name)!.push(s);
        row(a, s);
      } catch (err) {
        fail(`${a.name} metrics ${(err as Error).message}`, "");
      }
    }
    const conns = stats.churn + stats.bulkUp + stats.bulkDown + stats.persistent;
    const errs = [...errors.values()].reduce((a, b) => a + b, 0);
    say(
      `load     ${conns} connections verified (+${conns - lastConns}), ${stats.rounds} ping-pong rounds, ${(stats.bytes / 1073741824).toFixed(2)} GiB verified, errors ${errs}`,
    );
    lastConns = conns;
  }
  running = false;
  await Promise.race([Promise.all(loops), sleep(OP_TIMEOUT_MS + 5_000)]);
  // handles must come back once the load stops: no stream or socket left behind
  await sleep(5_000);
  const after = new Map<string, Sample>();
  for (const a of agents) if (!a.died) after.set(a.name, await sample(a).catch(() => undefined as unknown as Sample));

  console.log("");
  say(`summary after ${((Date.now() - t0) / 60_000).toFixed(1)} min (logs in ${logDir})`);
  console.log(
    "agent     idle RSS  start RSS  end RSS  min-max RSS   RSS growth/h (fit)  heap start/end  heap growth/h  fds start/end/after load  loop p99 median/max  warn error",
  );
  for (const a of agents) {
    const ss = samples.get(a.name)!;
    if (a.died) console.log(`${a.name.padEnd(8)}  DIED: ${a.died}`);
    if (ss.length === 0) continue;
    const [first, last] = [ss[0], ss[ss.length - 1]];
    const rss = ss.map((s) => s.rss);
    const p99s = ss.map((s) => s.lagP99).sort((x, y) => x - y);
    const fit = ss.length >= 4 ? ss.slice(Math.floor(ss.length / 10)) : ss; // skip the first tenth (warm-up)
    const aft = after.get(a.name);
    console.log(
      `${a.name.padEnd(8)} ${mib(idle.get(a.name)!.rss).padStart(9)} ${mib(first.rss).padStart(10)} ${mib(last.rss).padStart(8)}  ${mib(Math.min(...rss))}-${mib(Math.max(...rss))}`.padEnd(
        60,
      ) +
        `${mib(slope(fit, "rss")).padStart(7)} MiB/h       ${mib(first.heap)}/${mib(last.heap)}`.padEnd(37) +
        `${mib(slope(fit, "heap")).padStart(6)} MiB/h  ${first.fds}/${last.fds}/${aft?.fds ?? "?"} (streams ${aft?.streams ?? "?"})`.padEnd(42) +
        `${p99s[Math.floor(p99s.length / 2)].toFixed(1)}/${Math.max(...ss.map((s) => s.lagMax)).toFixed(1)} ms`.padEnd(22) +
        `${a.warn} ${a.error}`,
    );
    const busy = ((last.cpu - idle.get(a.name)!.cpu) * 100_000) / (last.t - idle.get(a.name)!.t);
    console.log(`  ${a.name}: ${busy.toFixed(1)} % of one core on average under load`);
    for (const p of a.lastProblems) console.log(`  ${a.name} logged: ${p}`);
  }
  const conns = stats.churn + stats.bulkUp + stats.bulkDown + stats.persistent;
  console.log(
    `load: ${conns} connections verified (${stats.churn} echo, ${stats.persistent} long-lived with ${stats.rounds} ping-pong rounds, ${stats.bulkUp} bulk up, ${stats.bulkDown} bulk down), ${(stats.bytes / 1073741824).toFixed(2)} GiB compared byte for byte or by sha256`,
  );
  const errs = [...errors.values()].reduce((a, b) => a + b, 0);
  console.log(`errors: ${errs}${errs ? " — " + [...errors].map(([k, n]) => `${k} x${n}`).join(", ") : ""}`);
  for (const e of firstErrors) console.log(`  ${e}`);
  const leftOpen = [...after.values()].some((s) => s && s.streams !== 0);
  const ok = errs === 0 && agents.every((a) => !a.died) && !leftOpen;
  console.log(ok ? "SOAK OK" : `SOAK FAILED${leftOpen ? " (tunnel streams left open after the load stopped)" : ""}`);
  for (const a of agents) a.child.kill("SIGTERM");
  target.close();
  process.exitCode = ok ? 0 : 1;
  setTimeout(() => process.exit(), 3_000).unref();
}

// Ctrl-C: stop the load and print the summary of what ran
process.on("SIGINT", () => (end = Date.now()));
main().catch((err: Error) => {
  console.error(`soak: ${err.message}`);
  process.exit(1);
});
