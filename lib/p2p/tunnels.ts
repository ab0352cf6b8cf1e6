// Tunnels: one libp2p stream per tunnelled TCP connection. The connect side accepts a client,
// picks a provider among the members, opens a stream and sends the service tag; the expose side
// checks the peer and the tag, dials its target and answers with one status byte. Then both
// sides pipe socket <-> stream.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import type { Libp2p } from "libp2p";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { byteStream } from "@libp2p/utils";
import { STREAM_LIMIT } from "./node.ts";
import type { Members } from "./members.ts";
import type { ConnectionCutter } from "./member-gate.ts";
import { bigReads, pipeSocketStream } from "./pipe.ts";
import { pathOf, type Metrics, type Path } from "./metrics.ts";
import { formatHostPort, type HostPort } from "./addr.ts";
import { WARM_MAX_AGE_MS, WarmStreams, type Warm } from "./warm-streams.ts";
import type { Logger } from "./log.ts";

export const TUNNEL_PROTOCOL = "/entangle/tunnel/1.0.0";

/** Reply byte of the exposing side once it has (or could not) reach its target. */
const Status = { OK: 0, UNKNOWN_SERVICE: 1, TARGET_UNREACHABLE: 2, NOT_A_MEMBER: 3 } as const;
const STATUS_TEXT = ["ok", "service not provided by this peer", "target unreachable", "not a member"];

const WAIT_FOR_PROVIDER_MS = 5_000;
const OPEN_TIMEOUT_MS = 10_000;
/** how long the exposing side waits for the tag: longer than a warm stream stays ready */
const TAG_WAIT_MS = 2 * WARM_MAX_AGE_MS;

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
}

/** Expose side: one inbound stream = one TCP connection to the target. */
export async function serveTunnel(o: TunnelOptions, target: HostPort, stream: Stream, conn: Connection): Promise<void> {
  const peer = conn.remotePeer.toString();
  try {
    await o.settled(peer);
    const bytes = byteStream(stream);
    const reply = (code: number) => bytes.write(Uint8Array.of(code));
    if (!o.members.has(peer)) {
      // at once, without waiting for a service tag; the stranger's connection goes too, so a
      // flood of such streams costs one log line per connection, not one per stream
      o.metrics.tunnels.labels("refused").inc();
      o.cutOff(conn, "tunnel refused: peer has not proved membership");
      await reply(Status.NOT_A_MEMBER).catch(() => {});
      return void stream.abort(new Error("not a member"));
    }
    const tag = Buffer.from((await bytes.read({ bytes: 32, signal: AbortSignal.timeout(TAG_WAIT_MS) })).subarray()).toString("hex");
    if (tag !== o.tag) {
      o.metrics.tunnels.labels("unknown_service").inc();
      await reply(Status.UNKNOWN_SERVICE);
      return void (await stream.close());
    }
    const socket = await connectTcp(target).catch((err: Error) => {
      o.log.warn({ target: formatHostPort(target), err: err.message }, "target unreachable");
      return undefined;
    });
    if (socket === undefined) {
      o.metrics.tunnels.labels("target_unreachable").inc();
      await reply(Status.TARGET_UNREACHABLE);
      return void (await stream.close());
    }
    await reply(Status.OK);
    await carry(o, socket, bytes.unwrap(), peer, pathOf(conn));
  } catch (err) {
    o.log.debug({ peer, err: (err as Error).message }, "tunnel stream failed");
    stream.abort(err as Error);
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
    const opened = await openTunnel(o, member.id).catch((err: Error) => {
      o.members.markFailed(member.id);
      o.log.warn({ peer: member.id, err: err.message }, "provider failed, trying another");
      return undefined;
    });
    if (opened === undefined) continue;
    member.active++;
    try {
      await carry(o, socket, opened.stream, member.id, opened.path);
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
    open: (peer) => negotiate(node, peer, AbortSignal.timeout(OPEN_TIMEOUT_MS)),
    current: (peer, conn) => pickConnection(node.getConnections(peerId(peer))) === conn,
  });
}

/** Parsing a peer id costs 0.15-0.2 ms (a multihash decode): once per provider, not per client. */
const peerIds = new Map<string, PeerId>();
function peerId(peer: string): PeerId {
  let id = peerIds.get(peer);
  if (id === undefined) {
    if (peerIds.size >= 1024) peerIds.clear(); // providers are few; bound it anyway
    id = peerIdFromString(peer);
    peerIds.set(peer, id);
  }
  return id;
}

/** A negotiated tunnel stream to the peer (no tag sent yet). */
async function negotiate(node: Libp2p, peer: string, signal: AbortSignal): Promise<Warm<Connection>> {
  const id = peerId(peer);
  const conn = pickConnection(node.getConnections(id)) ?? (await node.dial(id, { signal }));
  const stream = await conn.newStream(TUNNEL_PROTOCOL, { signal, maxOutboundStreams: STREAM_LIMIT, runOnLimitedConnection: true });
  return { stream, conn, openedAt: Date.now() };
}

/** The provider answered with a status other than OK: another stream to it would get the same. */
class Refused extends Error {}

async function openTunnel(o: TunnelOptions, peer: string): Promise<{ stream: Stream; path: Path }> {
  const warm = o.warm?.take(peer);
  if (warm !== undefined) {
    try {
      return await requestService(o, warm, AbortSignal.timeout(OPEN_TIMEOUT_MS));
    } catch (err) {
      if (err instanceof Refused) throw err;
      // the ready stream went stale (e.g. the provider restarted): a fresh one decides
    }
  }
  const signal = AbortSignal.timeout(OPEN_TIMEOUT_MS);
  return requestService(o, await negotiate(o.node, peer, signal), signal);
}

/** Send the service tag and wait for the provider's status byte. */
async function requestService(o: TunnelOptions, { stream, conn }: Warm<Connection>, signal: AbortSignal): Promise<{ stream: Stream; path: Path }> {
  const bytes = byteStream(stream);
  try {
    await bytes.write(Buffer.from(o.tag, "hex"), { signal });
    const status = (await bytes.read({ bytes: 1, signal })).get(0);
    if (status !== Status.OK) throw new Refused(STATUS_TEXT[status] ?? `status ${status}`);
    return { stream: bytes.unwrap(), path: pathOf(conn) };
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}

async function carry(o: TunnelOptions, socket: Socket, stream: Stream, peer: string, path: Path): Promise<void> {
  o.metrics.streams.inc();
  o.metrics.tunnels.labels("opened").inc();
  try {
    const { reset } = await pipeSocketStream(socket, stream, o.metrics.counters[path]);
    if (reset) o.log.debug({ peer }, "tunnel connection reset");
  } finally {
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
