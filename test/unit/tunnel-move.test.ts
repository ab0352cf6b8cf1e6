// Moving an open tunnel to another stream (lib/p2p/tunnel-move.ts, lib/p2p/pipe.ts): in one
// process, a client and an echo target on loopback TCP, the two agents' pipes between them, and
// two in-memory yamux stream pairs standing for the relayed and the direct connection. Bytes keep
// flowing both ways across the move and come out whole and in order; each side reads the old
// stream to its end before the new one; a client FIN sent before the move stays a FIN; a refused
// move leaves the tunnel where it was; an unanswered one cuts it (never a clean short end).
import { afterEach, describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { createServer, connect, type Server, type Socket } from "node:net";
import type { Stream } from "@libp2p/interface";
import { Pipe, watchRemoteFin, type PipeResult } from "../../lib/p2p/pipe.ts";
import { better, MoveAnswer, moveTunnel, OpenTunnels, parseMove, TUNNEL_ID_BYTES, type Movable } from "../../lib/p2p/tunnel-move.ts";
import { readHead } from "../../lib/p2p/tunnels.ts";
import { pairsClosedAfterEach } from "../helpers/streams.ts";

const pair = pairsClosedAfterEach();
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

async function until(f: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A socket pair on loopback: [the outside end, the agent's end (paused, as the agents get theirs)]. */
async function socketPair(): Promise<[Socket, Socket]> {
  let inner: Socket | undefined;
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => (inner = s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const outer = connect({ port: (server.address() as { port: number }).port, host: "127.0.0.1", allowHalfOpen: true, noDelay: true });
  outer.on("error", () => {});
  await new Promise((r) => outer.once("connect", r));
  await until(() => inner !== undefined);
  inner!.on("error", () => {});
  cleanup.push(
    () => outer.destroy(),
    () => inner?.destroy(),
    () => new Promise((r) => server.close(r)),
  );
  return [outer, inner!];
}

const counter = () => {
  const c = { sent: 0, received: 0 };
  return { c, counters: { sent: (n: number) => (c.sent += n), received: (n: number) => (c.received += n) } };
};

interface Rig {
  /** the user's TCP client */
  client: Socket;
  /** the exposed target's end (an echo server unless told otherwise) */
  target: Socket;
  connect: Pipe;
  expose: Pipe;
  results: Promise<[PipeResult, PipeResult]>;
  old: { outbound: Stream; inbound: Stream };
  relayed: { connect: ReturnType<typeof counter>; expose: ReturnType<typeof counter> };
  direct: { connect: ReturnType<typeof counter>; expose: ReturnType<typeof counter> };
  /** a new stream pair ("the direct connection"), watched as the agents watch theirs */
  fresh(): Promise<{ outbound: Stream; inbound: Stream }>;
}

/** client <-TCP-> [connect pipe] <-old stream-> [expose pipe] <-TCP-> target */
async function rig(echo = true): Promise<Rig> {
  const [client, connectSide] = await socketPair();
  const [target, exposeSide] = await socketPair();
  if (echo) {
    target.on("data", (d) => target.write(d));
    target.on("end", () => target.end());
  }
  const old = await pair();
  watchRemoteFin(old.outbound);
  watchRemoteFin(old.inbound);
  const relayed = { connect: counter(), expose: counter() };
  const direct = { connect: counter(), expose: counter() };
  const connectPipe = new Pipe(connectSide, old.outbound, relayed.connect.counters);
  const exposePipe = new Pipe(exposeSide, old.inbound, relayed.expose.counters);
  const fresh = async () => {
    const p = await pair();
    watchRemoteFin(p.outbound);
    watchRemoteFin(p.inbound);
    return p;
  };
  return {
    client,
    target,
    connect: connectPipe,
    expose: exposePipe,
    results: Promise.all([connectPipe.done, exposePipe.done]),
    old,
    relayed,
    direct,
    fresh,
  };
}

/** The exposing side's half of a move (as serveMove): read the id, answer, move. */
function serveMoveOn(r: Rig, inbound: Stream, answer: number = MoveAnswer.OK): Promise<string> {
  return readHead(inbound, TUNNEL_ID_BYTES, AbortSignal.timeout(2_000)).then(({ head, rest }) => {
    inbound.send(Uint8Array.of(answer));
    if (answer === MoveAnswer.OK) r.expose.moveTo(inbound, r.direct.expose.counters, rest);
    return Buffer.from(head).toString("hex");
  });
}

/** The connect side's half (as moveTunnels): moveTunnel over the fresh pair's outbound end. */
function moveOn(r: Rig, outbound: Stream, t: Partial<Movable> = {}) {
  return moveTunnel(
    { peer: "p", id: "ab".repeat(TUNNEL_ID_BYTES), pipe: r.connect, ...t },
    {
      open: () => Promise.resolve(outbound),
      answer: (s) => readHead(s, 1, AbortSignal.timeout(1_000)),
      counters: r.direct.connect.counters,
    },
  );
}

/**
 * Writes `total` random bytes in chunks, every few ms, and reads them back: resolves with the
 * sha256 of what was sent and of what came back, and how the client's socket ended.
 */
function stream(client: Socket, total: number, chunk = 16 * 1024, every = 2, fin = true) {
  const sent = createHash("sha256");
  const got = createHash("sha256");
  let received = 0;
  let written = 0;
  client.on("data", (d: Buffer) => {
    got.update(d);
    received += d.length;
  });
  const ended = new Promise<string>((resolve) => {
    client.once("end", () => resolve("clean end"));
    client.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  const writing = (async () => {
    while (written < total) {
      const b = randomBytes(Math.min(chunk, total - written));
      sent.update(b);
      written += b.length;
      client.write(b);
      await new Promise((r) => setTimeout(r, every));
    }
    if (fin) client.end();
  })();
  return {
    written: () => written,
    received: () => received,
    done: async () => {
      await writing;
      const how = await ended;
      return { how, received, sentHash: sent.digest("hex"), gotHash: got.digest("hex") };
    },
  };
}

describe("moving a tunnel to another stream", () => {
  it("echoes keep flowing across the move: all bytes back, in order; later bytes counted on the new path; clean close of both streams", async () => {
    const r = await rig();
    const s = stream(r.client, 2 * 1024 * 1024);
    await until(() => s.received() > 256 * 1024);
    const fresh = await r.fresh();
    const [outcome, id] = await Promise.all([moveOn(r, fresh.outbound), serveMoveOn(r, fresh.inbound)]);
    expect(outcome).toBe("moved");
    expect(id).toBe("ab".repeat(TUNNEL_ID_BYTES));
    const out = await s.done();
    expect(out.how).toBe("clean end");
    expect(out.received).toBe(2 * 1024 * 1024);
    expect(out.gotHash).toBe(out.sentHash);
    expect(await r.results).toEqual([{ reset: false }, { reset: false }]);
    // the old streams ended cleanly (FIN both ways), not reset
    expect([r.old.outbound.status, r.old.inbound.status]).toEqual(["closed", "closed"]);
    expect(r.direct.connect.c.sent).toBeGreaterThan(512 * 1024);
    expect(r.direct.connect.c.received).toBeGreaterThan(512 * 1024);
    expect(r.relayed.connect.c.sent + r.direct.connect.c.sent).toBe(2 * 1024 * 1024);
    expect(r.relayed.expose.c.received + r.direct.expose.c.received).toBe(2 * 1024 * 1024);
  });

  it("a client that stops reading: what waits in the old stream at the move still comes first", async () => {
    const r = await rig();
    const s = stream(r.client, 32 * 1024 * 1024, 256 * 1024, 1);
    await until(() => s.received() > 128 * 1024);
    r.client.pause();
    // the pipeline fills up to the client: the kernel's buffers, then the old stream's (paused)
    await until(() => r.old.outbound.readStatus === "paused" && r.old.outbound.readBufferLength > 0, 10_000);
    const fresh = await r.fresh();
    const [outcome] = await Promise.all([moveOn(r, fresh.outbound), serveMoveOn(r, fresh.inbound)]);
    expect(outcome).toBe("moved");
    await new Promise((res) => setTimeout(res, 50));
    r.client.resume();
    const out = await s.done();
    expect(out.how).toBe("clean end");
    expect(out.received).toBe(32 * 1024 * 1024);
    expect(out.gotHash).toBe(out.sentHash);
    expect(r.direct.connect.c.received).toBeGreaterThan(0);
    expect(await r.results).toEqual([{ reset: false }, { reset: false }]);
  });

  it("the exposing side's handover mark arrives before its answer: the connect side waits for the answer, then reads on", async () => {
    const r = await rig();
    const s = stream(r.client, 1024 * 1024);
    await until(() => s.received() > 128 * 1024);
    const fresh = await r.fresh();
    // by hand: the connect side asks (hold), the exposing side moves at once; its FIN on the old
    // stream reaches the connect side long before the (held back) answer
    r.connect.hold();
    r.expose.moveTo(fresh.inbound, r.direct.expose.counters);
    await until(() => r.old.outbound.remoteWriteStatus === "closed");
    await new Promise((res) => setTimeout(res, 50));
    expect(r.client.readableEnded).toBe(false);
    r.connect.release(fresh.outbound, r.direct.connect.counters);
    const out = await s.done();
    expect(out.how).toBe("clean end");
    expect(out.gotHash).toBe(out.sentHash);
    expect(await r.results).toEqual([{ reset: false }, { reset: false }]);
  });

  it("a client FIN sent before the move stays a FIN: the target's later bytes come over the new stream, then a clean end", async () => {
    // the target answers only after the client's FIN (a request/response), slowly, in parts
    const r = await rig(false);
    const got: Buffer[] = [];
    r.target.on("data", (d: Buffer) => got.push(d));
    const answer = randomBytes(512 * 1024);
    r.target.on("end", () => {
      void (async () => {
        for (let i = 0; i < answer.length; i += 64 * 1024) {
          r.target.write(answer.subarray(i, i + 64 * 1024));
          await new Promise((res) => setTimeout(res, 5));
        }
        r.target.end();
      })();
    });
    const back: Buffer[] = [];
    r.client.on("data", (d: Buffer) => back.push(d));
    const ended = new Promise<string>((resolve) => {
      r.client.once("end", () => resolve("clean end"));
      r.client.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    r.client.end("request");
    await until(() => Buffer.concat(back).length > 64 * 1024);
    const fresh = await r.fresh();
    const [outcome] = await Promise.all([moveOn(r, fresh.outbound), serveMoveOn(r, fresh.inbound)]);
    expect(outcome).toBe("moved");
    expect(await ended).toBe("clean end");
    expect(Buffer.concat(got).toString()).toBe("request");
    expect(Buffer.concat(back).equals(answer)).toBe(true);
    expect(r.direct.connect.c.received).toBeGreaterThan(0);
    expect(await r.results).toEqual([{ reset: false }, { reset: false }]);
  });

  it("refused: the tunnel stays on its stream and ends cleanly there", async () => {
    const r = await rig();
    const s = stream(r.client, 512 * 1024);
    await until(() => s.received() > 64 * 1024);
    const fresh = await r.fresh();
    const [outcome] = await Promise.all([moveOn(r, fresh.outbound), serveMoveOn(r, fresh.inbound, MoveAnswer.UNKNOWN_TUNNEL)]);
    expect(outcome).toBe("refused");
    const out = await s.done();
    expect(out.how).toBe("clean end");
    expect(out.gotHash).toBe(out.sentHash);
    expect(r.direct.connect.c.sent + r.direct.connect.c.received).toBe(0);
    expect(await r.results).toEqual([{ reset: false }, { reset: false }]);
  });

  it("a move stream that cannot be opened leaves the tunnel alone", async () => {
    const r = await rig();
    const s = stream(r.client, 256 * 1024);
    const outcome = await moveTunnel(
      { peer: "p", id: "00".repeat(TUNNEL_ID_BYTES), pipe: r.connect },
      { open: () => Promise.reject(new Error("no route")), answer: () => Promise.reject(new Error("unused")), counters: r.direct.connect.counters },
    );
    expect(outcome).toBe("unopened");
    const out = await s.done();
    expect(out.how).toBe("clean end");
    expect(out.gotHash).toBe(out.sentHash);
  });

  it("asked and never answered: the tunnel is cut (a reset at the client, never a clean end)", async () => {
    const r = await rig();
    const s = stream(r.client, 4 * 1024 * 1024, 16 * 1024, 5);
    await until(() => s.received() > 64 * 1024);
    const fresh = await r.fresh();
    // the exposing side takes the move, but its answer is lost
    const inbound = fresh.inbound;
    void readHead(inbound, TUNNEL_ID_BYTES, AbortSignal.timeout(2_000)).then(() => r.expose.moveTo(inbound, r.direct.expose.counters));
    const outcome = await moveTunnel(
      { peer: "p", id: "00".repeat(TUNNEL_ID_BYTES), pipe: r.connect },
      {
        open: () => Promise.resolve(fresh.outbound),
        answer: () => new Promise((_, rej) => setTimeout(() => rej(new Error("timeout")), 300)),
        counters: r.direct.connect.counters,
      },
    );
    expect(outcome).toBe("unanswered");
    const out = await s.done();
    expect(out.how).not.toBe("clean end");
    const [c, e] = await r.results;
    expect(c.reset && e.reset).toBe(true);
  });
});

describe("the pipe under a tunnel that never moves", () => {
  // a download: the client sends its request and FIN at once, before the tunnel is open (the
  // connect side's EarlyBytes closes the stream's writes); the pipe attaches after the FIN
  it("a client FIN before the pipe attached, the stream still open: the whole reply, then a clean end (not a reset)", async () => {
    const [client, agentSide] = await socketPair();
    const { outbound, inbound } = await pair();
    watchRemoteFin(outbound);
    const back: Buffer[] = [];
    client.on("data", (d: Buffer) => back.push(d));
    const ended = new Promise<string>((resolve) => {
      client.once("end", () => resolve("clean end"));
      client.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    client.end("D");
    agentSide.on("data", (d: Buffer) => outbound.send(d));
    agentSide.once("end", () => void outbound.close());
    agentSide.resume();
    await until(() => agentSide.readableEnded && inbound.remoteWriteStatus === "closed");
    agentSide.removeAllListeners("data");
    agentSide.pause();
    const done = new Pipe(agentSide, outbound, counter().counters).done;
    const reply = randomBytes(4 * 1024 * 1024);
    for (let i = 0; i < reply.length; i += 256 * 1024) {
      inbound.send(reply.subarray(i, i + 256 * 1024));
      await new Promise((res) => setTimeout(res, 1));
    }
    await inbound.close();
    expect(await ended).toBe("clean end");
    expect(Buffer.concat(back).equals(reply)).toBe(true);
    expect(await done).toEqual({ reset: false });
  });
});

describe("move decisions", () => {
  it("only a relayed tunnel moves, and only to a direct connection", () => {
    expect(better("relayed", "direct")).toBe(true);
    expect(better("relayed", "relayed")).toBe(false);
    expect(better("direct", "direct")).toBe(false);
    expect(better("direct", "relayed")).toBe(false);
  });

  it("a move request is exactly a tunnel id", () => {
    expect(parseMove(new Uint8Array(TUNNEL_ID_BYTES).fill(0xab))).toEqual({ id: "ab".repeat(TUNNEL_ID_BYTES) });
    expect(parseMove(new Uint8Array(3))).toEqual({ error: `move request of 3 bytes, want ${TUNNEL_ID_BYTES}` });
  });

  it("open tunnels: found only under the peer that opened them; those to move are the peer's relayed ones not moving already", () => {
    const open = new OpenTunnels();
    const pipe = { open: true } as Pipe;
    const conn = (path: string) => ({ remoteAddr: { toString: () => (path === "relayed" ? "/ip4/1.2.3.4/tcp/1/p2p/R/p2p-circuit" : "/ip4/5.6.7.8/tcp/2") } });
    const pathOf = (c: { remoteAddr: { toString(): string } }) =>
      (c.remoteAddr.toString().includes("/p2p-circuit") ? "relayed" : "direct") as "relayed" | "direct";
    const a = { peer: "A", id: "01", pipe, conn: conn("relayed") } as unknown as Movable;
    const b = { peer: "A", id: "02", pipe, conn: conn("direct") } as unknown as Movable;
    const c = { peer: "B", id: "03", pipe, conn: conn("relayed") } as unknown as Movable;
    const d = { peer: "A", id: "04", pipe, conn: conn("relayed"), moving: true } as unknown as Movable;
    const e = { peer: "A", id: "05", pipe: { open: false }, conn: conn("relayed") } as unknown as Movable;
    const forget = [a, b, c, d, e].map((t) => open.add(t));
    expect(open.get("A", "01")).toBe(a);
    expect(open.get("B", "01")).toBeUndefined();
    expect(open.toMove("A", "direct", pathOf as never)).toEqual([a]);
    expect(open.toMove("A", "relayed", pathOf as never)).toEqual([]);
    forget[0]();
    expect(open.get("A", "01")).toBeUndefined();
    expect(open.size).toBe(4);
  });
});
