// Peers that misbehave on each protocol, against real agent processes: garbage, frames too long,
// truncated frames, a slow-loris sender on the membership protocol; a stranger opening tens of
// thousands of tunnel streams; garbage and a stream flood on a relay's rendezvous. Each is cut
// off and logged, the agent's memory stays bounded, and members keep carrying traffic.
// (A stranger that only idles past Noise: stranger.test.ts; idle TCP floods: flood.test.ts.)
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { Connection, Stream } from "@libp2p/interface";
import type { Libp2p } from "libp2p";
import { multiaddr } from "@multiformats/multiaddr";
import { createNode } from "../../lib/p2p/node.ts";
import { AUTH_DEADLINE_MS } from "../../lib/p2p/member-gate.ts";
import { TUNNEL_PROTOCOL } from "../../lib/p2p/tunnels.ts";
import { AUTH_PROTOCOL } from "../../lib/p2p/membership.ts";
import { RENDEZVOUS_PROTOCOL } from "../../lib/p2p/rendezvous.ts";
import { newToken } from "../../lib/p2p/token.ts";
import { type AgentProcess, exchange, killAll, runEntangle, tcpServer } from "../helpers/agents.ts";

/** Streams a stranger opens in the flood tests (bounded in time too: FLOOD_SECONDS). */
const STREAMS = Number(process.env.HOSTILE_STREAMS ?? 100_000);
const FLOOD_SECONDS = Number(process.env.HOSTILE_SECONDS ?? 60);

const strangers: Libp2p[] = [];
afterEach(async () => {
  // bounded: a node whose peer vanished mid-stream may take long to stop
  await Promise.all(strangers.splice(0).map((s) => Promise.race([Promise.resolve(s.stop()).catch(() => {}), new Promise((r) => setTimeout(r, 3_000))])));
  await killAll();
});

/** A libp2p node of our own stack (Noise, yamux) that holds no token. */
async function stranger(): Promise<Libp2p> {
  const node = await createNode({ listen: [], viaRelays: false, relayServer: false });
  strangers.push(node);
  return node;
}

function rssMiB(agent: AgentProcess): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.child.pid}/status`, "utf8"));
  return Number(m![1]) / 1024;
}

/** A server that answers each connection with the sha256 of what it got. */
async function hashServer() {
  return tcpServer((s) => {
    const h = createHash("sha256");
    s.on("data", (d) => h.update(d));
    s.on("end", () => s.end(h.digest("hex")));
    s.on("error", () => {});
  });
}

/** A member's round trip through the tunnel: 256 KiB, checked by hash. */
async function memberWorks(port: number): Promise<void> {
  const payload = randomBytes(256 * 1024);
  const r = await exchange(port, payload);
  expect(r.error).toBeUndefined();
  expect(r.data.toString()).toBe(createHash("sha256").update(payload).digest("hex"));
}

async function pair() {
  const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
  const srv = await hashServer();
  const exp = runEntangle(["agent", "expose", "--service", "s", "--target", `127.0.0.1:${srv.port}`, "--p2p-listen", "127.0.0.1:0"], env);
  await exp.waitMsg("agent started", 60_000); // Node start-up on a loaded machine
  const addr = await exp.p2pAddr();
  const con = runEntangle(["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0", "--peer", addr], env);
  await con.waitMsg("accepting connections", 60_000);
  const port = await con.listenPort();
  await con.waitMsg("member authenticated", 60_000);
  await memberWorks(port);
  return { exp, con, addr, port, close: () => srv.server.close() };
}

function closedWithin(node: Libp2p, conn: Connection, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    if (conn.status !== "open") return resolve(0);
    const timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
    node.addEventListener("connection:close", (e) => e.detail === conn && (clearTimeout(timer), resolve(Date.now() - t0)));
  });
}

function send(stream: Stream, bytes: Uint8Array): void {
  try {
    stream.send(bytes);
  } catch {
    // reset by the agent already
  }
}

describe("hostile peers on the membership protocol", () => {
  it.each([
    ["garbage (not JSON)", Uint8Array.from([6, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01])],
    ["a frame that is JSON but not an object", Uint8Array.from([4, ...Buffer.from("null")])],
    ["a length prefix of 2^40 bytes", Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 1, 2, 3])],
  ])(
    "%s: refused and logged at once, the connection closed, the member unaffected",
    async (_name, bytes) => {
      const { exp, port, addr, close } = await pair();
      const node = await stranger();
      const conn = await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(5_000) });
      const stream = await conn.newStream(AUTH_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
      send(stream, bytes);
      const ms = await closedWithin(node, conn, 5_000);
      console.log(`auth ${_name}: stranger cut off after ${ms} ms`);
      expect(ms).toBeLessThan(AUTH_DEADLINE_MS / 2); // not just the deadline for strangers
      const line = await exp.waitFor((l) => l.msg.startsWith("peer refused") && l.peer === node.peerId.toString());
      expect(line.reason).toMatch(/^malformed membership message: frame /);
      await memberWorks(port);
      close();
    },
    120_000,
  );

  it("a slow-loris sender (a truncated frame, one byte a second) is cut off by the deadline, the member unaffected", async () => {
    const { exp, port, addr, close } = await pair();
    const node = await stranger();
    const conn = await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(5_000) });
    const stream = await conn.newStream(AUTH_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
    send(stream, Uint8Array.from([200])); // promises 200 bytes
    const drip = setInterval(() => send(stream, Uint8Array.from([0x20])), 1_000);
    try {
      const ms = await closedWithin(node, conn, 2 * AUTH_DEADLINE_MS + 5_000);
      console.log(`slow-loris on auth cut off after ${ms} ms`);
      await exp.waitFor((l) => String(l.msg).startsWith("closing inbound connection") && l.peer === node.peerId.toString());
    } finally {
      clearInterval(drip);
    }
    await memberWorks(port);
    close();
  }, 120_000);
});

/**
 * Opens `total` streams of `protocol` from strangers, `concurrency` at a time, each sending
 * `payload` and then waiting for the agent to end it; redials whenever the agent cuts the
 * connection. Stops at `total` or after `seconds`.
 */
async function streamFlood(addr: string, protocol: string, payload: () => Uint8Array, total: number, seconds: number, concurrency = 200) {
  const node = await stranger();
  const deadline = Date.now() + seconds * 1000;
  let opened = 0;
  let failed = 0;
  let connections = 0;
  let conn: Promise<Connection> | undefined;
  const connection = () => {
    conn ??= node.dial(multiaddr(addr), { signal: AbortSignal.timeout(5_000) }).then((c) => (connections++, c));
    return conn;
  };
  const worker = async () => {
    while (opened < total && Date.now() < deadline) {
      opened++;
      try {
        const c = await connection();
        if (c.status !== "open") {
          conn = undefined;
          continue;
        }
        const s = await c.newStream(protocol, { signal: AbortSignal.timeout(5_000), runOnLimitedConnection: true });
        send(s, payload());
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => (s.abort(new Error("flood")), resolve()), 2_000);
          s.addEventListener("close", () => (clearTimeout(t), resolve()), { once: true });
        });
      } catch {
        failed++;
        const c = await conn?.catch(() => undefined);
        if (c === undefined || c.status !== "open") conn = undefined;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { opened, failed, connections };
}

describe("stream floods from a stranger", () => {
  it(`up to ${STREAMS} tunnel streams: each refused, the stranger cut off, memory and log bounded, the member unaffected`, async () => {
    const { exp, port, addr, close } = await pair();
    const rss0 = rssMiB(exp);
    const lines0 = exp.lines.length;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(exp))), 500);
    let memberRounds = 0;
    let stop = false;
    const member = (async () => {
      while (!stop) {
        await memberWorks(port);
        memberRounds++;
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const t0 = Date.now();
    const r = await streamFlood(addr, TUNNEL_PROTOCOL, () => randomBytes(32), STREAMS, FLOOD_SECONDS).finally(() => (stop = true));
    await member;
    clearInterval(sampler);
    const secs = (Date.now() - t0) / 1000;
    const logged = exp.lines.length - lines0;
    console.log(
      `tunnel flood: ${r.opened} streams in ${secs.toFixed(1)} s (${r.failed} failed at open) over ${r.connections} connections; ` +
        `expose agent RSS ${rss0.toFixed(0)} -> peak ${peak.toFixed(0)} MiB; ${logged} log lines; member round trips meanwhile: ${memberRounds}`,
    );
    expect(peak - rss0).toBeLessThan(200);
    expect(memberRounds).toBeGreaterThan(0);
    // a stranger's streams are refused, each connection's loudly once, never one line per stream
    expect(exp.lines.some((l) => l.msg === "tunnel refused: peer has not proved membership")).toBe(true);
    expect(logged).toBeLessThan(Math.max(1_000, r.opened / 20));
    expect(exp.lines.some((l) => l.msg === "member disconnected")).toBe(false);
    await memberWorks(port);
    close();
  }, 180_000);

  it("a relay: garbage and a flood of rendezvous streams; two members still meet through it and tunnel", async () => {
    const relay = runEntangle(["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
    await relay.waitMsg("agent started", 60_000);
    const addr = await relay.p2pAddr();
    const rss0 = rssMiB(relay);
    const junk = [
      () => randomBytes(16),
      () => Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]),
      () => Uint8Array.from([40, 0x7b]),
      () => Uint8Array.from([4, ...Buffer.from("null")]),
    ];
    let i = 0;
    const r = await streamFlood(addr, RENDEZVOUS_PROTOCOL, () => junk[i++ % junk.length](), Math.min(STREAMS, 20_000), FLOOD_SECONDS / 2);
    const rss1 = rssMiB(relay);
    console.log(
      `rendezvous flood: ${r.opened} streams (${r.failed} failed at open) over ${r.connections} connections; relay RSS ${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MiB`,
    );
    expect(rss1 - rss0).toBeLessThan(200);
    expect(relay.lines.some((l) => String(l.msg).startsWith("closing connection: malformed rendezvous request"))).toBe(true);

    const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
    const srv = await hashServer();
    runEntangle(["agent", "expose", "--service", "s", "--target", `127.0.0.1:${srv.port}`, "--peer", addr, "--no-direct"], env);
    const con = runEntangle(["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0", "--peer", addr, "--no-direct"], env);
    await con.waitMsg("accepting connections", 60_000);
    const port = await con.listenPort();
    expect((await con.waitMsg("member authenticated", 60_000)).path).toBe("relayed");
    await memberWorks(port);
    srv.server.close();
  }, 120_000);
});
