// Chaos with real agent processes: each moving part of a tunnel is killed with SIGKILL in the
// middle of transfers (and restarted at once, as a supervisor would), and the link between two
// network namespaces gets netem faults. Every time: no byte that reaches an application differs
// from the byte sent at its offset (corrupted, reordered, foreign); an application next to a
// surviving agent sees a cut transfer as a reset, never as a clean end of a shorter stream; new
// connections work again (the recovery time is printed; README, Reliability).
import { spawn, spawnSync } from "node:child_process";
import { connect as connectTcp, createServer, type Socket } from "node:net";
import { randomBytes, randomInt } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { AgentProcess, ENTANGLE, freePort, killAll, runEntangle } from "../helpers/agents.ts";
import { allIntact, outcome, recovery, transfer, underway, VerifyingTarget, type Transfer } from "../helpers/chaos.ts";

const MiB = 1024 * 1024;
const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
let target: VerifyingTarget;

beforeAll(async () => {
  // 4 MiB/s per transfer: 16 MiB takes ~4 s, so a kill lands in the middle
  target = await new VerifyingTarget(4 * MiB).start();
});
afterAll(() => target.close());
afterEach(async () => {
  await killAll();
});

const expose = (p2p: string, extra: string[] = []) =>
  runEntangle(["agent", "expose", "--service", "chaos", "--target", `127.0.0.1:${target.port}`, "--p2p-listen", p2p, ...extra], env);
const connect = (listen: string, extra: string[]) => runEntangle(["agent", "connect", "--service", "chaos", "--listen", listen, ...extra], env);

/** Two uploads and two downloads of 16 MiB, under way (≥ 1 MiB received at each receiving end). */
async function midTransfer(port: number): Promise<Transfer[]> {
  const ts = (["up", "up", "down", "down"] as const).map((k) => transfer(target, port, k, 16 * MiB));
  await underway(ts, 256 * 1024, 60_000);
  return ts;
}

// agents start in seconds, but in tens of seconds on two cores shared with other test runs
const SLOW = 90_000;
async function listening(p: AgentProcess): Promise<number> {
  await p.waitMsg("accepting connections", SLOW);
  return p.listenPort();
}
async function started(p: AgentProcess): Promise<string> {
  await p.waitMsg("agent started", SLOW);
  return p.p2pAddr();
}

/** recovery(), and when it fails, what the agents logged last. */
async function recovered(port: number, since: number, agents: AgentProcess[], host?: string): Promise<number> {
  try {
    return await recovery(port, since, host, SLOW);
  } catch (err) {
    const logs = agents.map((a) => a.stderr.slice(-12).join("\n")).join("\n---\n");
    throw new Error(`${(err as Error).message}; last log lines:\n${logs}`);
  }
}

/** When the restarted process logged "agent started" (performance.now()). */
const up = (p: AgentProcess) => p.waitMsg("agent started", SLOW).then(() => performance.now());

function report(what: string, killedAt: number, ms: number, upAt: number, detail: string): void {
  const start = Math.round(upAt - killedAt);
  console.log(
    `[chaos] ${what} kill -9: new connections work ${ms} ms after the kill (the restarted process took ${start} ms to start, then ${ms - start} ms); in flight: ${detail}`,
  );
}

describe("kill -9 mid-transfer, restarted at once", () => {
  it("the expose agent: transfers in flight are cut as resets at the client, no byte is wrong, new connections work", async () => {
    const p2p = `127.0.0.1:${await freePort()}`;
    let exp = expose(p2p);
    await started(exp);
    const con = connect("127.0.0.1:0", ["--p2p-listen", "127.0.0.1:0", "--peer", p2p]);
    const port = await listening(con);
    await con.waitMsg("member authenticated", SLOW);
    const ts = await midTransfer(port);
    const killedAt = performance.now();
    await exp.kill("SIGKILL");
    exp = expose(p2p);
    const upAt = up(exp);
    const ms = await recovered(port, killedAt, [exp, con]);
    const o = await outcome(ts);
    expect(o.corrupt, o.summary).toBe(0);
    expect(o.hung, o.summary).toBe(0);
    expect(o.completed, o.summary).toBeLessThan(ts.length); // the kill did cut transfers
    // downloads arrive at the client, next to the surviving connect agent: a reset, never a short clean stream.
    // (an upload's target lost its agent: the kernel closes that socket, which may look like a clean end)
    expect(
      o.truncated.filter((k) => k === "down"),
      o.summary,
    ).toEqual([]);
    await allIntact(target, port);
    report("expose agent", killedAt, ms, await upAt, o.summary);
  }, 180_000);

  it("the connect agent: transfers in flight are cut as resets at the target, no byte is wrong, new connections work", async () => {
    const exp = expose("127.0.0.1:0");
    const peer = await started(exp);
    const listen = `127.0.0.1:${await freePort()}`;
    const port = Number(listen.split(":")[1]);
    const start = () => connect(listen, ["--p2p-listen", "127.0.0.1:0", "--peer", peer]);
    let con = start();
    await con.waitMsg("member authenticated", SLOW);
    const ts = await midTransfer(port);
    const killedAt = performance.now();
    await con.kill("SIGKILL");
    con = start();
    const upAt = up(con);
    const ms = await recovered(port, killedAt, [exp, con]);
    const o = await outcome(ts);
    expect(o.corrupt, o.summary).toBe(0);
    expect(o.hung, o.summary).toBe(0);
    expect(o.completed, o.summary).toBeLessThan(ts.length);
    // uploads arrive at the target, next to the surviving expose agent
    expect(
      o.truncated.filter((k) => k === "up"),
      o.summary,
    ).toEqual([]);
    await allIntact(target, port);
    report("connect agent", killedAt, ms, await upAt, o.summary);
  }, 180_000);

  it("the relay both agents meet and tunnel through (--no-direct): cut as resets on both ends, the agents meet again", async () => {
    const relayAt = `127.0.0.1:${await freePort()}`;
    const relay = () => runEntangle(["agent", "relay", "--p2p-listen", relayAt]);
    let r = relay();
    await started(r);
    const viaRelay = ["--no-direct", "--peer", relayAt];
    const exp = runEntangle(["agent", "expose", "--service", "chaos", "--target", `127.0.0.1:${target.port}`, ...viaRelay], env);
    const con = connect("127.0.0.1:0", viaRelay);
    const port = await listening(con);
    expect((await con.waitMsg("member authenticated", SLOW)).path).toBe("relayed");
    const ts = await midTransfer(port);
    const killedAt = performance.now();
    await r.kill("SIGKILL");
    r = relay();
    const upAt = up(r);
    const ms = await recovered(port, killedAt, [r, exp, con]);
    const o = await outcome(ts);
    expect(o.corrupt, o.summary).toBe(0);
    expect(o.hung, o.summary).toBe(0);
    expect(o.completed, o.summary).toBeLessThan(ts.length);
    // both agents survive: every cut transfer is a reset at its receiving end
    expect(o.truncated, o.summary).toEqual([]);
    await allIntact(target, port);
    report("relay", killedAt, ms, await upAt, o.summary);
  }, 180_000);
});

// ---- network faults between network namespaces ---------------------------------------------
// This kernel has no netem (CONFIG_NET_SCH_NETEM is off, and there are no modules), so:
//   loss and partition: nftables in the connect agent's namespace, on the agents' link only;
//   delay: a delay line (a TCP relay in this process that holds each chunk for the delay, order kept).
// root ns: target 10.N.1.1, clients -> 10.N.2.2:9000, delay line 10.N.2.1:P -> 10.N.1.2:4001
// ns A: expose agent (p2p 10.N.1.2:4001)    ns B: connect agent (listen 10.N.2.2:9000, peer 10.N.2.1:P)
const root = process.getuid?.() === 0 && spawnSync("nft", ["--version"]).status === 0;
const id = randomBytes(2).toString("hex");
const net = `10.${randomInt(100, 200)}`;
const [A, B] = [`ent-ca-${id}`, `ent-cb-${id}`];
const nsProcs: AgentProcess[] = [];

function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim()}`);
}
function inNs(ns: string, args: string[]): AgentProcess {
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, ENTANGLE, ...args], {
    env: { ...process.env, EDGEVPNTOKEN: undefined, ENTANGLE_LOG_LEVEL: "debug", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const p = new AgentProcess(child);
  nsProcs.push(p);
  return p;
}

/** A TCP relay that holds every chunk `delayMs` (changeable at any time) in each direction, in order. */
async function delayLine(to: { host: string; port: number }, host: string): Promise<{ port: number; delayMs: number; close(): void }> {
  const line = { port: 0, delayMs: 0, close: () => server.close() };
  const forward = (from: Socket, into: Socket) => {
    let last = 0;
    let queued = 0;
    from.on("data", (d: Buffer) => {
      last = Math.max(last, performance.now() + line.delayMs);
      queued += d.length;
      if (queued > 4 * MiB) from.pause();
      setTimeout(() => {
        queued -= d.length;
        if (!into.destroyed) into.write(d);
        if (queued <= 4 * MiB) from.resume();
      }, last - performance.now());
    });
    from.on("end", () => setTimeout(() => into.end(), Math.max(0, last - performance.now())));
    from.on("error", () => into.destroy());
    from.on("close", () => setTimeout(() => into.destroy(), Math.max(0, last - performance.now()) + 10));
  };
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (down) => {
    const up = connectTcp({ ...to, allowHalfOpen: true });
    up.once("connect", () => {
      forward(down, up);
      forward(up, down);
      down.resume();
    });
    up.once("error", () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  line.port = (server.address() as { port: number }).port;
  return line;
}

describe.runIf(root)("network faults between the agents' network namespaces", () => {
  let nsTarget: VerifyingTarget;
  let line: Awaited<ReturnType<typeof delayLine>>;
  const clientHost = `${net}.2.2`;
  let port = 0;

  /** nftables in B on the agents' link only (the delay line's port): "" removes the rules. */
  function drop(what: string): void {
    spawnSync("ip", ["netns", "exec", B, "nft", "delete", "table", "inet", "chaos"]);
    if (what === "") return;
    const rules = `table inet chaos {
      chain out { type filter hook output priority 0; tcp dport ${line.port} ${what} drop; }
      chain in { type filter hook input priority 0; tcp sport ${line.port} ${what} drop; }
    }`;
    const r = spawnSync("ip", ["netns", "exec", B, "nft", "-f", "-"], { input: rules, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`nft: ${r.stderr}`);
  }

  beforeAll(async () => {
    sh("ip", "netns", "add", A);
    sh("ip", "netns", "add", B);
    for (const [ns, i] of [
      [A, 1],
      [B, 2],
    ] as const) {
      const [outer, inner] = [`cr${i}-${id}`, `cn${i}-${id}`];
      sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner);
      sh("ip", "link", "set", inner, "netns", ns);
      sh("ip", "addr", "add", `${net}.${i}.1/24`, "dev", outer);
      sh("ip", "link", "set", outer, "up");
      sh("ip", "-n", ns, "addr", "add", `${net}.${i}.2/24`, "dev", inner);
      sh("ip", "-n", ns, "link", "set", inner, "up");
      sh("ip", "-n", ns, "link", "set", "lo", "up");
    }
    nsTarget = await new VerifyingTarget(1 * MiB, `${net}.1.1`).start();
    line = await delayLine({ host: `${net}.1.2`, port: 4001 }, `${net}.2.1`);
    inNs(A, ["agent", "expose", "--service", "faults", "--target", `${net}.1.1:${nsTarget.port}`, "--p2p-listen", `${net}.1.2:4001`]);
    const con = inNs(B, [
      "agent",
      "connect",
      "--service",
      "faults",
      "--listen",
      `${clientHost}:9000`,
      "--p2p-listen",
      "127.0.0.1:0",
      "--peer",
      `${net}.2.1:${line.port}`,
    ]);
    port = await listening(con);
    await con.waitMsg("member authenticated", SLOW);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nsProcs.map((p) => p.kill()));
    nsTarget?.close();
    line?.close();
    // the veths (and B's nftables) go with their namespaces
    spawnSync("ip", ["netns", "del", A]);
    spawnSync("ip", ["netns", "del", B]);
  });

  it.each([
    ["200 ms delay each way", () => (line.delayMs = 200), () => (line.delayMs = 0)],
    ["5% packet loss each way", () => drop("numgen random mod 100 < 5"), () => drop("")],
  ])(
    "%s, starting mid-transfer: nothing is cut, every byte intact, new connections work",
    async (what, on, off) => {
      const ts = (["up", "down"] as const).map((k) => transfer(nsTarget, port, k, 2 * MiB, clientHost));
      await underway(ts, 256 * 1024, 60_000);
      const at = performance.now();
      on();
      try {
        const ms = await recovery(port, at, clientHost, SLOW);
        const o = await outcome(ts);
        expect(o.completed, o.summary).toBe(ts.length);
        await allIntact(nsTarget, port, clientHost, 512 * 1024, 10);
        console.log(
          `[chaos] ${what}: a new connection worked ${ms} ms into it; transfers in flight completed intact (${o.summary}); fresh ones intact within ${Math.round(performance.now() - at)} ms`,
        );
      } finally {
        off();
      }
    },
    180_000,
  );

  it("a 30 s partition mid-transfer: no byte is wrong or silently dropped, new connections work soon after it heals", async () => {
    const ts = (["up", "down"] as const).map((k) => transfer(nsTarget, port, k, 8 * MiB, clientHost));
    await underway(ts, 256 * 1024, 60_000);
    drop("");
    drop("meta l4proto tcp");
    await new Promise((r) => setTimeout(r, 30_000));
    drop("");
    const healedAt = performance.now();
    const ms = await recovery(port, healedAt, clientHost, SLOW);
    const o = await outcome(ts);
    expect(o.corrupt, o.summary).toBe(0);
    expect(o.hung, o.summary).toBe(0);
    // both agents survive: a transfer the partition cut is a reset at its receiving end
    expect(o.truncated, o.summary).toEqual([]);
    await allIntact(nsTarget, port, clientHost);
    console.log(`[chaos] 30 s partition: new connections work ${ms} ms after it healed; in flight: ${o.summary}`);
  }, 180_000);
});
