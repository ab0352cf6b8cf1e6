// NAT lab benchmark (issue 9): `npm run bench:natlab [-- --runs N --mib M]` (root; the lab of
// hack/natlab.sh, brought up if it is not, and left as it was found).
// Each run: a new token; one exposing agent in natlab-a and, started at the same moment, one
// connecting agent in natlab-b (both NATs keep ports: hole punched, direct) and one in natlab-c
// (random ports: relayed through the lab's relay). Agents know only the token and the lab's
// bootstrap list. Per path it measures
//   - agent start -> first echoed byte through the tunnel (an echo tried every 200 ms),
//   - agent start -> the hole-punched connection (b; from its log),
//   - throughput: M MiB down, then M MiB up, one connection at a time, every byte verified,
//   - the share of the connect agent's tunnel bytes that went direct (its metrics).
// For scale, each run also measures an expose/connect pair on loopback (no NAT, no DHT: --peer)
// with the same client code, at the same moment's machine load.
// Every transfer and wait is bounded; traffic stays inside the lab's namespaces and the root
// namespace's control links (10.254.x.x). Prints one line per run and path, then medians.
import { spawn, spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { newToken } from "../lib/p2p/token.ts";
import { AgentProcess, ENTANGLE } from "../test/helpers/agents.ts";
import { echo, outcome, transfer, VerifyingTarget } from "../test/helpers/chaos.ts";

const { values: opts } = parseArgs({ options: { runs: { type: "string", default: "3" }, mib: { type: "string", default: "32" } } });
const runs = Number(opts.runs);
const mib = Number(opts.mib);
if (!(Number.isInteger(runs) && runs >= 1 && runs <= 10)) throw new Error("--runs must be 1-10");
if (!(Number.isInteger(mib) && mib >= 1 && mib <= 256)) throw new Error("--mib must be 1-256");
if (process.getuid?.() !== 0) throw new Error("needs root (network namespaces)");
process.env.ENTANGLE_FORBID_PUBLIC_BOOTSTRAP = "1";

const MiB = 1024 * 1024;
const SITES = { a: { lan: "192.168.10.2", ctl: "10.254.1.2" }, b: { lan: "192.168.20.2", ctl: "10.254.2.2" }, c: { lan: "192.168.30.2", ctl: "10.254.3.2" } };
type Site = keyof typeof SITES;

function lab(cmd: string): string {
  const r = spawnSync("bash", ["hack/natlab.sh", cmd], { encoding: "utf8", timeout: 180_000 });
  if (r.status !== 0 && cmd !== "status") throw new Error(`hack/natlab.sh ${cmd} failed (${r.status}):\n${r.stderr}`);
  return r.status === 0 ? r.stdout : "";
}

const wasUp = lab("status").startsWith("up");
const bootstrap = /^ENTANGLE_BOOTSTRAP=(.+)$/m.exec(wasUp ? lab("status") : lab("up"))?.[1];
if (bootstrap === undefined) throw new Error("no ENTANGLE_BOOTSTRAP from hack/natlab.sh");

function agentIn(site: Site, token: string, args: string[]): AgentProcess {
  const child = spawn(
    "ip",
    ["netns", "exec", `natlab-${site}`, process.execPath, ENTANGLE, ...args, "--p2p-listen", `${SITES[site].lan}:4001`, "--bootstrap", bootstrap!],
    {
      env: { ...process.env, ENTANGLE_NETWORK_TOKEN: token, EDGEVPNTOKEN: undefined, ENTANGLE_PEERS: undefined, ENTANGLE_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout!.resume();
  return new AgentProcess(child);
}

async function firstByte(host: string, since: number, limitMs: number, port = 9000): Promise<number> {
  while (performance.now() - since < limitMs) {
    if (await echo(port, 64, host, 3_000)) return performance.now() - since;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no echo through ${host}:${port} within ${limitMs} ms`);
}

async function bytesShare(host: string, port = 9100): Promise<number> {
  const text = await (await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const get = (path: string) =>
    [...text.matchAll(new RegExp(`^entangle_tunnel_bytes_total\\{direction="(?:sent|received)",path="${path}"\\} ([\\d.e+]+)$`, "gm"))].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  const direct = get("direct");
  const relayed = get("relayed");
  return direct + relayed === 0 ? 0 : (100 * direct) / (direct + relayed);
}

/** MiB/s of one verified transfer of `size` bytes. */
async function throughput(target: VerifyingTarget, host: string, kind: "up" | "down", port = 9000): Promise<number> {
  const t0 = performance.now();
  const t = transfer(target, port, kind, mib * MiB, host);
  const o = await outcome([t], 120_000);
  if (o.completed !== 1 || !t.ok) throw new Error(`${kind} through ${host} failed: ${o.summary}`);
  return mib / ((performance.now() - t0) / 1000);
}

interface Row {
  path: string;
  firstByteMs: number;
  punchMs?: number;
  down: number;
  up: number;
  direct: number;
}

const rows: Row[] = [];

function report(run: number, row: Row): void {
  process.stdout.write(
    `run ${run} ${row.path.padEnd(22)} first byte ${(row.firstByteMs / 1000).toFixed(2)} s` +
      `${row.punchMs !== undefined ? `, punched ${(row.punchMs / 1000).toFixed(2)} s` : ""}; ${mib} MiB down ${row.down.toFixed(1)} MiB/s, up ${row.up.toFixed(1)} MiB/s; ` +
      `${row.direct.toFixed(1)} % of bytes direct\n`,
  );
}

/** The same measurements for an expose/connect pair on 127.0.0.1 (a configured peer, no DHT). */
async function loopback(run: number, token: string): Promise<Row> {
  const env = { ...process.env, ENTANGLE_NETWORK_TOKEN: token, EDGEVPNTOKEN: undefined, ENTANGLE_PEERS: undefined, ENTANGLE_LOG_LEVEL: "info" };
  const local = (args: string[]) => {
    const child = spawn(process.execPath, [ENTANGLE, ...args, "--bootstrap", "none"], { env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.resume();
    const p = new AgentProcess(child);
    started.push(p);
    return p;
  };
  const t0 = performance.now();
  const expose = local(["agent", "expose", "--service", "loop", "--target", `10.254.1.1:${target.port}`, "--p2p-listen", "127.0.0.1:0"]);
  const addr = await expose.p2pAddr();
  const con = local(["agent", "connect", "--service", "loop", "--listen", "127.0.0.1:19700", "--health-listen", "127.0.0.1:19800", "--peer", addr]);
  const fb = await firstByte("127.0.0.1", t0, 60_000, 19700);
  const row: Row = {
    path: "loopback (no NAT)",
    firstByteMs: fb,
    down: await throughput(target, "127.0.0.1", "down", 19700),
    up: await throughput(target, "127.0.0.1", "up", 19700),
    direct: await bytesShare("127.0.0.1", 19800),
  };
  report(run, row);
  await Promise.all([expose.kill(), con.kill()]);
  return row;
}
// as fast as the tunnel takes it (the target paces by the clock; this is no limit)
const target = await new VerifyingTarget(1e12, "10.254.1.1").start();
const started: AgentProcess[] = [];
try {
  for (let run = 1; run <= runs; run++) {
    const token = newToken();
    const service = "bench-" + Math.random().toString(36).slice(2, 8);
    const t0 = performance.now();
    const wall0 = Date.now();
    const expose = agentIn("a", token, ["agent", "expose", "--service", service, "--target", `10.254.1.1:${target.port}`]);
    const connect = (site: Site) =>
      agentIn(site, token, ["agent", "connect", "--service", service, "--listen", `${SITES[site].ctl}:9000`, "--health-listen", `${SITES[site].ctl}:9100`]);
    const b = connect("b");
    const c = connect("c");
    started.push(expose, b, c);
    const [fbB, fbC] = await Promise.all([firstByte(SITES.b.ctl, t0, 120_000), firstByte(SITES.c.ctl, t0, 120_000)]);
    const punched = await b.waitMsg("direct connection to a peer reached through a relay (hole punched)", 60_000).catch(() => undefined);
    for (const [site, fb, punch] of [
      ["b", fbB, punched === undefined ? undefined : Number(punched.time) - wall0],
      ["c", fbC, undefined],
    ] as const) {
      const host = SITES[site].ctl;
      const down = await throughput(target, host, "down");
      const up = await throughput(target, host, "up");
      const row: Row = {
        path: site === "b" ? "a<->b (hole punched)" : "a<->c (relayed)",
        firstByteMs: fb,
        punchMs: punch,
        down,
        up,
        direct: await bytesShare(host),
      };
      rows.push(row);
      report(run, row);
    }
    await Promise.all([expose.kill(), b.kill(), c.kill()]);
    rows.push(await loopback(run, token));
  }
} finally {
  await Promise.all(started.map((p) => p.kill()));
  target.close();
  if (!wasUp) lab("down");
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
process.stdout.write(`\nmedians over ${runs} run(s), ${mib} MiB per transfer (load ${(await import("node:os")).loadavg()[0].toFixed(1)}):\n`);
for (const path of [...new Set(rows.map((r) => r.path))]) {
  const rs = rows.filter((r) => r.path === path);
  const punch = rs.flatMap((r) => (r.punchMs !== undefined ? [r.punchMs] : []));
  process.stdout.write(
    `  ${path.padEnd(22)} first byte ${(median(rs.map((r) => r.firstByteMs)) / 1000).toFixed(2)} s` +
      `${punch.length > 0 ? `, punched ${(median(punch) / 1000).toFixed(2)} s (${punch.length}/${rs.length} runs)` : ""}; ` +
      `down ${median(rs.map((r) => r.down)).toFixed(1)} MiB/s, up ${median(rs.map((r) => r.up)).toFixed(1)} MiB/s; ${median(rs.map((r) => r.direct)).toFixed(1)} % direct\n`,
  );
}
