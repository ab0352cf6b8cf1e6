// Tunnels: one libp2p stream per tunnelled TCP connection. The connect side accepts a client,
// picks a provider among the members, opens a stream and sends the service tag; the expose side
// checks the peer and the tag, dials its target and answers with one status byte. Then both
// sides pipe socket <-> stream. Over /entangle/tunnel/1.1.0 the connect side sends the client's
// bytes (and its FIN) right behind the tag, without waiting for the status byte: a client that
// speaks first (HTTP, most databases) saves one crossing of the tunnel. Over 1.0.0 (an older
// exposing side) it waits for the status byte first. Over 1.2.0 a tunnel id follows the tag: a
// tunnel opened over a relay moves to a direct connection when one appears (tunnel-move.ts).
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { Libp2p } from "libp2p";
import type { Connection, PeerId, Stream, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { STREAM_LIMIT } from "./node.ts";
import type { Members } from "./members.ts";
import type { ConnectionCutter } from "./member-gate.ts";
import { bigReads, Pipe, watchRemoteFin } from "./pipe.ts";
import { pathOf, type Metrics } from "./metrics.ts";
import { formatHostPort, type HostPort } from "./addr.ts";
import { WARM_MAX_AGE_MS, WarmStreams, type Warm } from "./warm-streams.ts";
import type { Logger } from "./log.ts";
import { withDeadline } from "./deadline.ts";
import { MOVE_ANSWER_MS, MoveAnswer, moveTunnel, newTunnelId, parseMove, TUNNEL_ID_BYTES, TUNNEL_MOVE_PROTOCOL, type OpenTunnels } from "./tunnel-move.ts";

/** As 1.1.0, and a tunnel id follows the tag: the tunnel may move to a better connection. */
export const TUNNEL_PROTOCOL_MOVABLE = "/entangle/tunnel/1.2.0";
/** The client's bytes may follow the tag before the status byte came back. */
export const TUNNEL_PROTOCOL = "/entangle/tunnel/1.1.0";
/** The first version: nothing follows the tag until the status byte came back. */
export const TUNNEL_PROTOCOL_V1 = "/entangle/tunnel/1.0.0";
/**
 * The exposing side serves all three the same way (it takes bytes and a FIN that arrive before it
 * has dialed its target). The connect side proposes the newest first: an older exposing side
 * answers "na" and the next is taken, one more round trip each while a stream is warmed, not per
 * client.
 */
export const TUNNEL_PROTOCOLS = [TUNNEL_PROTOCOL_MOVABLE, TUNNEL_PROTOCOL, TUNNEL_PROTOCOL_V1];
export const isTunnelProtocol = (protocol: string) => TUNNEL_PROTOCOLS.includes(protocol);

/** Reply byte of the exposing side once it has (or could not) reach its target. */
const Status = { OK: 0, UNKNOWN_SERVICE: 1, TARGET_UNREACHABLE: 2, NOT_A_MEMBER: 3 } as const;
const STATUS_TEXT = ["ok", "service not provided by this peer", "target unreachable", "not a member"];

const WAIT_FOR_PROVIDER_MS = 5_000;
const OPEN_TIMEOUT_MS = 10_000;
/** how long the exposing side waits for the tag: longer than a warm stream stays ready */
const TAG_WAIT_MS = 2 * WARM_MAX_AGE_MS;
/**
 * What a client sends before a provider answered is kept to be replayed to the next provider if
 * this one refuses; past this much the client is not read until the answer comes.
 */
const EARLY_MAX = 64 * 1024;

export interface TunnelOptions {
  node: Libp2p;
  /** the service tag (hex) this agent exposes or connects to */
  tag: string;
  members: Members;
  /** resolves once a membership proof under way for the peer has ended */
  settled(peer: string): Promise<void>;
  cutOff: ConnectionCutter;
  metrics: Metrics;
  log: Logger;
  /** connect side: negotiated streams kept ready per provider */
  warm?: WarmStreams<Connection>;
  /** the open tunnels that may move (over 1.2.0) to a better connection; none move without it */
  open?: OpenTunnels;
}

/** Expose side: one inbound stream = one TCP connection to the target. */
export async function serveTunnel(o: TunnelOptions, target: HostPort, stream: Stream, conn: Connection): Promise<void> {
  const peer = conn.remotePeer.toString();
  watchRemoteFin(stream);
  try {
    await o.settled(peer);
    const reply = (code: number) => void stream.send(Uint8Array.of(code));
    if (!o.members.has(peer)) {
      // at once, without waiting for a service tag; the stranger's connection goes too, so a
      // flood of such streams costs one log line per connection, not one per stream
      o.metrics.tunnels.labels("refused").inc();
      o.cutOff(conn, "tunnel refused: peer has not proved membership");
      try {
        reply(Status.NOT_A_MEMBER);
      } catch {
        // it went away already
      }
      return void stream.abort(new Error("not a member"));
    }
    // the client's first bytes (and even its FIN) may come right behind the tag: they wait in the
    // stream (and in `rest`) while the target is dialed
    const movable = stream.protocol === TUNNEL_PROTOCOL_MOVABLE;
    const { head, rest } = await readHead(stream, 32 + (movable ? TUNNEL_ID_BYTES : 0), TAG_WAIT_MS);
    // compared as bytes, and the id read through a view: no copies, no hex string of the tag
    const id = movable ? Buffer.from(head.buffer, head.byteOffset + 32, TUNNEL_ID_BYTES).toString("hex") : undefined;
    if (!tagBytes(o.tag).equals(Buffer.from(head.buffer, head.byteOffset, 32))) {
      o.metrics.tunnels.labels("unknown_service").inc();
      reply(Status.UNKNOWN_SERVICE);
      return void (await stream.close());
    }
    const socket = await connectTcp(target).catch((err: Error) => {
      o.log.warn({ target: formatHostPort(target), err: err.message }, "target unreachable");
      return undefined;
    });
    if (socket === undefined) {
      o.metrics.tunnels.labels("target_unreachable").inc();
      reply(Status.TARGET_UNREACHABLE);
      return void (await stream.close());
    }
    // a stream that went away meanwhile is the pipe's to cut (with the socket)
    if (stream.writeStatus === "writable") reply(Status.OK);
    await carry(o, socket, stream, peer, conn, rest, id);
  } catch (err) {
    o.log.debug({ peer, err: (err as Error).message }, "tunnel stream failed");
    stream.abort(err as Error);
  }
}

/**
 * Expose side: a move stream (tunnel-move.ts) from a proved member, for a tunnel it opened: the
 * tunnel's bytes go both ways over this stream once the old one has ended.
 */
export async function serveMove(o: TunnelOptions, stream: Stream, conn: Connection): Promise<void> {
  const peer = conn.remotePeer.toString();
  watchRemoteFin(stream);
  try {
    await o.settled(peer);
    if (!o.members.has(peer)) {
      o.cutOff(conn, "tunnel move refused: peer has not proved membership");
      return void stream.abort(new Error("not a member"));
    }
    const { head, rest } = await readHead(stream, TUNNEL_ID_BYTES, OPEN_TIMEOUT_MS);
    const req = parseMove(head);
    const t = "id" in req ? o.open?.get(peer, req.id) : undefined;
    if (t === undefined || !t.pipe.open) {
      o.log.debug({ peer, err: "error" in req ? req.error : "no such tunnel" }, "tunnel move refused");
      stream.send(Uint8Array.of(MoveAnswer.UNKNOWN_TUNNEL));
      return void (await stream.close());
    }
    stream.send(Uint8Array.of(MoveAnswer.OK));
    const path = pathOf(conn);
    // the id is read to its exact length: what came with it is the connect side's tunnel bytes
    t.pipe.moveTo(stream, o.metrics.counters[path], rest);
    o.metrics.tunnels.labels("moved").inc();
    o.log.debug({ peer, path }, "tunnel moved");
  } catch (err) {
    o.log.debug({ peer, err: (err as Error).message }, "tunnel move stream failed");
    stream.abort(err as Error);
  }
}

/**
 * Connect side: a new connection to a peer opened. The tunnels to that peer on a worse one
 * (relayed, when this one is direct) move to it.
 */
export function moveTunnels(o: TunnelOptions, conn: Connection): void {
  if (o.open === undefined || conn.status !== "open") return;
  const peer = conn.remotePeer.toString();
  const to = pathOf(conn);
  for (const t of o.open.toMove(peer, to, pathOf)) {
    const started = performance.now();
    const signal = AbortSignal.timeout(MOVE_ANSWER_MS);
    void moveTunnel(t, {
      open: () => conn.newStream(TUNNEL_MOVE_PROTOCOL, { signal, maxOutboundStreams: STREAM_LIMIT }),
      answer: (stream) => readHead(stream, 1, signal),
      counters: o.metrics.counters[to],
    }).then((outcome) => {
      if (outcome === "moved") {
        t.conn = conn;
        o.metrics.tunnels.labels("moved").inc();
      }
      o.log.debug({ peer, path: to, outcome, ms: Math.round(performance.now() - started) }, "tunnel move");
    });
  }
}

/** Connect side: a local TCP listener whose every client gets a tunnel to a provider. */
export async function listenForClients(o: TunnelOptions, at: HostPort, service: string): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => void acceptClient(o, socket, service));
  server.maxConnections = STREAM_LIMIT;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => resolve());
  });
  return server;
}

/** Find a provider, open a stream, fail over to the next one on error. */
async function acceptClient(o: TunnelOptions, socket: Socket, service: string): Promise<void> {
  socket.on("error", () => {});
  const early = new EarlyBytes(socket);
  const deadline = Date.now() + WAIT_FOR_PROVIDER_MS;
  const tried = new Set<string>();
  while (!socket.destroyed) {
    const candidates = o.members.providers(o.tag).filter((m) => !tried.has(m.id));
    if (candidates.length === 0) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
      if (tried.size > 0 && o.members.providers(o.tag).every((m) => tried.has(m.id))) tried.clear();
      continue;
    }
    const member = candidates[0];
    tried.add(member.id);
    const opened = await openTunnel(o, member.id, early).catch((err: Error) => {
      o.members.markFailed(member.id);
      o.log.warn({ peer: member.id, err: err.message }, "provider failed, trying another");
      return undefined;
    });
    if (opened === undefined) continue;
    member.active++;
    o.metrics.counters[pathOf(opened.conn)].sent(early.bytes);
    try {
      const carried = carry(o, socket, opened.stream, member.id, opened.conn, opened.rest, opened.id);
      // opened over a relay while a direct connection came up: it missed that connection's opening
      if (opened.id !== undefined && pathOf(opened.conn) === "relayed") {
        const best = pickConnection(o.node.getConnections(peerId(member.id)));
        if (best !== undefined && best !== opened.conn) moveTunnels(o, best);
      }
      await carried;
    } finally {
      member.active--;
    }
    return;
  }
  o.metrics.tunnels.labels("no_provider").inc();
  o.log.warn({ service }, "no reachable provider: connection refused");
  if (!socket.destroyed) socket.resetAndDestroy();
}

/**
 * The connection a new tunnel goes over: a direct one when there is one (after hole punching, a
 * peer can be reached both ways for a while), else any open one, else a new dial.
 */
export function pickConnection(conns: Connection[]): Connection | undefined {
  const open = conns.filter((c) => c.status === "open");
  return open.find((c) => pathOf(c) === "direct") ?? open[0];
}

/** The tunnel streams a connect side keeps ready, over the connection a new tunnel would use. */
export function warmStreams(node: Libp2p): WarmStreams<Connection> {
  return new WarmStreams<Connection>({
    open: (peer) => withDeadline(OPEN_TIMEOUT_MS, (signal) => negotiate(node, peer, signal)),
    current: (peer, conn) => pickConnection(node.getConnections(peerId(peer))) === conn,
  });
}

/** `make` once per key, not per call; the keys are few (providers, tags): bounded anyway at `limit`. */
function memo<T>(limit: number, make: (key: string) => T): (key: string) => T {
  const made = new Map<string, T>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) {
      if (made.size >= limit) made.clear();
      value = make(key);
      made.set(key, value);
    }
    return value;
  };
}

/** Parsing a peer id costs 0.15-0.2 ms (a multihash decode): once per provider, not per client. */
const peerId: (peer: string) => PeerId = memo(1024, peerIdFromString);

/** A negotiated tunnel stream to the peer (no tag sent yet). */
async function negotiate(node: Libp2p, peer: string, signal: AbortSignal): Promise<Warm<Connection>> {
  const id = peerId(peer);
  const conn = pickConnection(node.getConnections(id)) ?? (await node.dial(id, { signal }));
  const stream = await conn.newStream(TUNNEL_PROTOCOLS, { signal, maxOutboundStreams: STREAM_LIMIT, runOnLimitedConnection: true });
  return { stream, conn, openedAt: Date.now() };
}

/**
 * A service tag's bytes, decoded from hex once per tag, not per tunnel (a hex decode and a concat
 * with the tunnel id were ~20 µs of a new connection's CPU on the connect side). Only copied from:
 * a stream keeps what it is sent.
 */
const tagBytes = memo(16, (tag) => Buffer.from(tag, "hex"));

/** The provider answered with a status other than OK: another stream to it would get the same. */
class Refused extends Error {}

interface Opened {
  stream: Stream;
  conn: Connection;
  /** what came with the status byte */
  rest: Uint8Array[];
  /** over 1.2.0: the tunnel's id (hex) */
  id?: string;
}

async function openTunnel(o: TunnelOptions, peer: string, early: EarlyBytes): Promise<Opened> {
  const warm = o.warm?.take(peer);
  if (warm !== undefined) {
    try {
      return await requestService(o, warm, early, OPEN_TIMEOUT_MS);
    } catch (err) {
      if (err instanceof Refused) throw err;
      // the ready stream went stale (e.g. the provider restarted): a fresh one decides
    }
  }
  return withDeadline(OPEN_TIMEOUT_MS, async (signal) => requestService(o, await negotiate(o.node, peer, signal), early, signal));
}

/**
 * Send the service tag and wait for the provider's status byte. Over 1.1.0 the client's bytes
 * follow the tag at once; over 1.0.0 they (and those an earlier provider got before refusing)
 * follow the status byte.
 */
async function requestService(o: TunnelOptions, { stream, conn }: Warm<Connection>, early: EarlyBytes, limit: AbortSignal | number): Promise<Opened> {
  watchRemoteFin(stream);
  try {
    const id = stream.protocol === TUNNEL_PROTOCOL_MOVABLE ? newTunnelId() : undefined;
    const tag = tagBytes(o.tag);
    if (id === undefined) stream.send(Buffer.from(tag));
    else {
      const head = Buffer.allocUnsafe(tag.byteLength + id.byteLength);
      head.set(tag);
      head.set(id, tag.byteLength);
      stream.send(head);
    }
    const pipelined = stream.protocol !== TUNNEL_PROTOCOL_V1;
    if (pipelined) early.into(stream);
    const { head, rest } = await readHead(stream, 1, limit);
    early.stop();
    const status = head[0];
    if (status !== Status.OK) throw new Refused(STATUS_TEXT[status] ?? `status ${status}`);
    if (!pipelined) {
      early.into(stream);
      early.stop();
    }
    early.delivered();
    return { stream, conn, rest, id: id === undefined ? undefined : Buffer.from(id).toString("hex") };
  } catch (err) {
    early.stop();
    stream.abort(err as Error);
    throw err;
  }
}

/**
 * The client's bytes (and FIN) from its connection until a provider said OK, sent to the stream
 * of the provider being asked and kept: one that refuses is followed by another, which gets them
 * all again. Reading pauses at EARLY_MAX until the answer.
 */
class EarlyBytes {
  private chunks: Buffer[] = [];
  bytes = 0;
  private ended = false;
  private stream: Stream | undefined;
  private listening = false;
  private readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  /** Send what the client sent so far to the stream, and what it sends next, until stop(). */
  into(stream: Stream): void {
    this.stream = stream;
    for (const chunk of this.chunks) stream.send(chunk);
    if (this.ended) return void closeWrite(stream);
    if (!this.listening) {
      this.listening = true;
      this.socket.on("data", this.onData);
      this.socket.once("end", this.onEnd);
    }
    if (this.bytes < EARLY_MAX) this.socket.resume();
  }

  /** Stop reading the client (the pipe takes over, or the next provider is asked). */
  stop(): void {
    this.stream = undefined;
    if (!this.listening) return;
    this.listening = false;
    this.socket.pause();
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
  }

  /** A provider took them: nothing is kept for the tunnel's lifetime (`bytes` stays counted). */
  delivered(): void {
    this.chunks = [];
  }

  private readonly onData = (buf: Buffer) => {
    this.chunks.push(buf);
    this.bytes += buf.length;
    if (this.bytes >= EARLY_MAX) this.socket.pause();
    if (this.stream?.writeStatus === "writable") this.stream.send(buf);
  };

  private readonly onEnd = () => {
    this.ended = true;
    if (this.stream !== undefined) closeWrite(this.stream);
  };
}

function closeWrite(stream: Stream): void {
  if (stream.writeStatus === "writable") stream.close().catch((err: Error) => stream.abort(err));
}

/**
 * The first `n` bytes the stream receives. What came with them is `rest`; later bytes wait in the
 * stream until the next listener. Given `ms` instead of a signal, it fails after that long: a plain
 * timer, not AbortSignal.timeout() (~26 µs per call here, once or twice per new tunnel on each side).
 */
export function readHead(stream: Stream, n: number, limit: AbortSignal | number): Promise<{ head: Uint8Array; rest: Uint8Array[] }> {
  return new Promise((resolve, reject) => {
    const got: Uint8Array[] = [];
    let have = 0;
    const signal = typeof limit === "number" ? undefined : limit;
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: Error) => {
      stream.removeEventListener("message", onMessage);
      stream.removeEventListener("end", onEnd);
      stream.removeEventListener("close", onClose);
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      if (err !== undefined) return reject(err);
      const all = got.length === 1 ? got[0] : Buffer.concat(got);
      resolve({ head: all.subarray(0, n), rest: all.byteLength > n ? [all.subarray(n)] : [] });
    };
    const onMessage = (evt: StreamMessageEvent) => {
      const data = evt.data.subarray();
      got.push(data);
      have += data.byteLength;
      if (have >= n) done();
    };
    const onEnd = () => done(new Error(`stream ended after ${have} of ${n} bytes`));
    const onClose = (evt: StreamCloseEvent) => done(evt.error ?? new Error(`stream closed after ${have} of ${n} bytes`));
    const onAbort = () => done(signal?.reason as Error);
    if (signal?.aborted === true) return onAbort();
    if (stream.status !== "open" && stream.status !== "closing") return done(new Error(`stream ${stream.status}`));
    if (stream.remoteWriteStatus === "closed" && stream.readBufferLength === 0) return onEnd();
    stream.addEventListener("message", onMessage);
    stream.addEventListener("end", onEnd);
    stream.addEventListener("close", onClose);
    if (signal !== undefined) signal.addEventListener("abort", onAbort);
    else {
      // like AbortSignal.timeout(), it keeps no process alive
      timer = setTimeout(() => done(new Error(`no ${n} bytes within ${limit as number} ms`)), limit as number);
      timer.unref();
    }
  });
}

async function carry(o: TunnelOptions, socket: Socket, stream: Stream, peer: string, conn: Connection, head: Uint8Array[], id?: string): Promise<void> {
  o.metrics.streams.inc();
  o.metrics.tunnels.labels("opened").inc();
  const pipe = new Pipe(socket, stream, o.metrics.counters[pathOf(conn)], { head });
  const forget = id !== undefined && o.open !== undefined ? o.open.add({ peer, id, pipe, conn }) : undefined;
  try {
    const { reset } = await pipe.done;
    if (reset) o.log.debug({ peer }, "tunnel connection reset");
  } finally {
    forget?.();
    o.metrics.streams.dec();
  }
}

function connectTcp(target: HostPort): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createConnection({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      timeout: 5_000,
      onread: bigReads(() => socket),
    });
    socket.once("connect", () => {
      socket.setTimeout(0);
      socket.pause();
      resolve(socket);
    });
    socket.once("timeout", () => socket.destroy(new Error("connect timeout")));
    socket.once("error", reject);
  });
}
