// One agent process: a libp2p node plus one role (expose, connect, relay). It keeps dialing its
// configured peers, meets other members through relays' rendezvous (and mDNS when asked), proves
// membership on every connection it dials, and carries one stream per tunnelled TCP connection.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { createHmac } from "node:crypto";
import type { Libp2p } from "libp2p";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { byteStream } from "@libp2p/utils";
import { createNode, STREAM_LIMIT } from "./node.ts";
import { deriveKeys, serviceTag, type DerivedKeys, type NetworkToken } from "./token.ts";
import { AUTH_PROTOCOL, MembershipError, proveAsInitiator, proveAsResponder, type Hello } from "./membership.ts";
import { RENDEZVOUS_PROTOCOL, RendezvousTable, registerAndDiscover, serveRendezvous } from "./rendezvous.ts";
import { Members } from "./members.ts";
import { bigReads, pipeSocketStream } from "./pipe.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { startHealthServer } from "./health.ts";
import { formatHostPort, type HostPort } from "./addr.ts";
import type { Logger } from "./log.ts";

export const TUNNEL_PROTOCOL = "/entangle/tunnel/1.0.0";

/** Reply byte of the exposing side once it has (or could not) reach its target. */
const Status = { OK: 0, UNKNOWN_SERVICE: 1, TARGET_UNREACHABLE: 2, NOT_A_MEMBER: 3 } as const;
const STATUS_TEXT = ["ok", "service not provided by this peer", "target unreachable", "not a member"];

const TICK_MS = 1_000;
const WAIT_FOR_PROVIDER_MS = 5_000;
const OPEN_TIMEOUT_MS = 10_000;
/**
 * An inbound connection whose peer has not proved membership by then is closed: past Noise,
 * a stranger otherwise holds it until the 5-minute inactivity timeout. Members start their
 * proof as soon as they connect (ms on a LAN); a proof under way gets its own 10 s to finish.
 */
export const AUTH_DEADLINE_MS = 10_000;

export type Role = { mode: "expose"; service: string; target: HostPort } | { mode: "connect"; service: string; listen: HostPort } | { mode: "relay" };

export interface AgentConfig {
  role: Role;
  token?: NetworkToken;
  p2pListen: Multiaddr[];
  peers: Multiaddr[];
  mdns: boolean;
  /** Reachable only through relays: no direct listener, no direct addresses shared. */
  noDirect?: boolean;
  healthListen?: HostPort;
  log: Logger;
}

interface DialTarget {
  addr: Multiaddr;
  peer?: string;
  nextAttempt: number;
  backoff: number;
}

export class Agent {
  readonly metrics: Metrics = createMetrics();
  readonly members = new Members();
  node!: Libp2p;
  private readonly keys?: DerivedKeys;
  private readonly tag?: string;
  private readonly pendingAuth = new Map<string, Promise<void>>();
  private readonly cutConnections = new WeakSet<Connection>();
  private readonly dialTargets: DialTarget[];
  private readonly relays = new Map<string, Multiaddr>();
  private readonly closers: Array<() => Promise<void> | void> = [];
  private listener?: Server;
  private timer?: NodeJS.Timeout;
  private ticking = false;
  private stopped = false;
  private readonly log: Logger;

  private readonly cfg: AgentConfig;

  constructor(cfg: AgentConfig) {
    this.cfg = cfg;
    this.log = cfg.log;
    if (cfg.token !== undefined) this.keys = deriveKeys(cfg.token);
    if (cfg.role.mode !== "relay") {
      if (this.keys === undefined) throw new Error("a network token is required");
      this.tag = serviceTag(this.keys, cfg.role.service);
    }
    this.dialTargets = cfg.peers.map((addr) => ({ addr, peer: addr.getComponents().find((c) => c.name === "p2p")?.value, nextAttempt: 0, backoff: 500 }));
  }

  /** Address of the local TCP listener (connect mode), useful when started on port 0. */
  get listenAddress(): HostPort | undefined {
    const a = this.listener?.address();
    return a !== null && typeof a === "object" ? { host: a.address, port: a.port } : undefined;
  }

  async start(): Promise<void> {
    const { role } = this.cfg;
    this.node = await createNode({
      listen: this.cfg.noDirect === true ? [] : this.cfg.p2pListen,
      viaRelays: role.mode !== "relay",
      relayServer: role.mode === "relay",
      mdnsTag: this.cfg.mdns ? this.mdnsTag() : undefined,
    });
    this.closers.push(() => this.node.stop());
    const handlerOpts = { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT, runOnLimitedConnection: true };

    if (role.mode === "relay") {
      const table = new RendezvousTable();
      await this.node.handle(
        RENDEZVOUS_PROTOCOL,
        (stream, conn) => serveRendezvous(table, stream, conn, (err) => this.cutOff(conn, "closing connection: malformed rendezvous request", err.message)),
        handlerOpts,
      );
    } else {
      await this.node.handle(AUTH_PROTOCOL, (stream, conn) => this.respondAuth(stream, conn), handlerOpts);
      if (role.mode === "expose") await this.node.handle(TUNNEL_PROTOCOL, (stream, conn) => this.serveTunnel(stream, conn), handlerOpts);
      this.node.addEventListener("connection:open", (evt) => {
        if (evt.detail.direction === "outbound") this.initiateAuth(evt.detail);
        else this.requireAuth(evt.detail);
      });
      this.node.addEventListener("peer:disconnect", (evt) => {
        if (this.members.remove(evt.detail.toString())) {
          this.metrics.members.set(this.members.size);
          this.log.info({ peer: evt.detail.toString() }, "member disconnected");
        }
      });
      this.node.addEventListener("peer:discovery", (evt) => {
        if (this.node.getConnections(evt.detail.id).length === 0) this.dialPeer(evt.detail.id, "mdns");
      });
    }
    if (role.mode === "connect") await this.startListener(role.listen);
    if (this.cfg.healthListen !== undefined) {
      const server = await startHealthServer(this.cfg.healthListen, { ready: () => this.ready() }, this.metrics.registry);
      this.closers.push(() => new Promise<void>((r) => server.close(() => r())));
      const a = server.address();
      if (a !== null && typeof a === "object") this.log.info({ health: formatHostPort({ host: a.address, port: a.port }) }, "health endpoint listening");
    }
    this.log.info(
      { mode: role.mode, peerId: this.node.peerId.toString(), addrs: this.node.getMultiaddrs().map(String), network: this.keys?.fingerprint },
      "agent started",
    );
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.listener?.close();
    for (const close of this.closers.reverse()) await close();
  }

  async ready(): Promise<{ ok: boolean; reason: string }> {
    const { role } = this.cfg;
    if (role.mode === "relay") return { ok: true, reason: "relay running" };
    if (role.mode === "connect") {
      const n = this.members.providers(this.tag!).length;
      return n > 0 ? { ok: true, reason: `${n} provider(s) of ${role.service}` } : { ok: false, reason: `no authenticated provider of ${role.service} yet` };
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: role.target.host, port: role.target.port, timeout: 2_000 });
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
      s.once("timeout", () => (s.destroy(), resolve(false)));
    });
    return { ok, reason: ok ? `target ${formatHostPort(role.target)} reachable` : `target ${formatHostPort(role.target)} unreachable` };
  }

  // ---- discovery -------------------------------------------------------------------------

  private mdnsTag(): string {
    // a per-network tag keeps other networks' agents out of our mDNS answers
    const fp = this.keys?.fingerprint ?? "relay";
    return `_entangle-${fp.slice(0, 12)}._udp.local`;
  }

  private rendezvousNamespace(): string {
    return createHmac("sha256", this.keys!.rendezvous).update("members").digest("hex");
  }

  /** Periodic: redial configured peers, refresh rendezvous on relays. Never overlaps itself. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await Promise.all([this.redialConfigured(), this.keys !== undefined ? this.rendezvous() : undefined]);
    } catch (err) {
      this.log.debug({ err }, "tick failed");
    } finally {
      this.ticking = false;
    }
  }

  private async redialConfigured(): Promise<void> {
    const now = Date.now();
    await Promise.all(
      this.dialTargets.map(async (t) => {
        if (t.peer !== undefined && this.node.getConnections(peerIdFromString(t.peer)).length > 0) return;
        if (t.nextAttempt > now) return;
        try {
          const conn = await this.node.dial(t.addr, { signal: AbortSignal.timeout(5_000) });
          t.peer = conn.remotePeer.toString();
          t.backoff = 500;
          this.metrics.dials.labels("ok").inc();
          this.log.debug({ addr: t.addr.toString(), peer: t.peer }, "connected to peer");
        } catch (err) {
          this.metrics.dials.labels("failed").inc();
          t.nextAttempt = Date.now() + t.backoff;
          // stay under ~4 s between attempts so a restarted peer is found again quickly
          t.backoff = Math.min(t.backoff * 2, 4_000);
          this.log.debug({ addr: t.addr.toString(), err: (err as Error).message }, "dial failed");
        }
      }),
    );
  }

  private async rendezvous(): Promise<void> {
    const ns = this.rendezvousNamespace();
    const own =
      this.cfg.noDirect === true
        ? []
        : this.node
            .getMultiaddrs()
            .filter((a) => !a.toString().includes("/p2p-circuit"))
            .map(String);
    for (const conn of this.node.getConnections()) {
      if (conn.status !== "open" || conn.limits !== undefined) continue;
      const id = conn.remotePeer;
      if (this.members.has(id.toString())) continue;
      const protocols = await this.node.peerStore.get(id).then(
        (p) => p.protocols,
        () => [] as string[],
      );
      if (!protocols.includes(RENDEZVOUS_PROTOCOL)) continue;
      this.relays.set(id.toString(), conn.remoteAddr);
      try {
        const found = await registerAndDiscover(conn, ns, own);
        for (const reg of found) {
          const peer = peerIdFromString(reg.id);
          if (peer.equals(this.node.peerId) || this.node.getConnections(peer).length > 0) continue;
          const circuit = multiaddr(`${conn.remoteAddr.toString().split("/p2p/")[0]}/p2p/${id}/p2p-circuit`);
          const addrs = [...reg.addrs.flatMap((a) => safeMultiaddr(a)), circuit];
          await this.node.peerStore.merge(peer, { multiaddrs: addrs });
          this.dialPeer(peer, "rendezvous");
        }
      } catch (err) {
        this.log.debug({ relay: id.toString(), err: (err as Error).message }, "rendezvous failed");
      }
    }
  }

  private dialPeer(peer: PeerId, via: string): void {
    this.node.dial(peer, { signal: AbortSignal.timeout(10_000) }).then(
      () => this.metrics.dials.labels("ok").inc(),
      (err: Error) => {
        this.metrics.dials.labels("failed").inc();
        this.log.debug({ peer: peer.toString(), via, err: err.message }, "dial failed");
      },
    );
  }

  // ---- membership ------------------------------------------------------------------------

  private hello(): Hello {
    return { services: this.cfg.role.mode === "expose" ? [this.tag!] : [] };
  }

  private initiateAuth(conn: Connection): void {
    const peer = conn.remotePeer.toString();
    if (this.members.has(peer) || this.pendingAuth.has(peer)) return;
    this.log.debug({ peer, addr: conn.remoteAddr.toString() }, "proving membership");
    const run = proveAsInitiator(conn, this.node.peerId.toString(), this.keys!.auth, this.hello())
      .then(
        (hello) => this.admit(peer, hello, conn),
        (err: Error) => {
          // a peer that does not speak our membership protocol is a relay or a stranger: not an error
          if (err.name === "UnsupportedProtocolError") this.log.debug({ peer }, "peer does not speak the membership protocol (a relay?)");
          else this.refuse(conn, err);
        },
      )
      .finally(() => this.pendingAuth.delete(peer));
    this.pendingAuth.set(peer, run);
  }

  /**
   * Members only: a relay serves peers it cannot authenticate (it holds no token), so relay
   * mode never calls this; members reach each other through it over connections they dial.
   */
  private requireAuth(conn: Connection): void {
    const timer = setTimeout(() => void this.closeIfStranger(conn), AUTH_DEADLINE_MS);
    timer.unref();
  }

  private async closeIfStranger(conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    // membership is per peer: another connection (a simultaneous dial) may have proved it
    await this.pendingAuth.get(peer);
    if (this.stopped || conn.status !== "open" || this.members.has(peer)) return;
    this.metrics.authFailures.inc();
    this.log.info({ peer, addr: conn.remoteAddr.toString() }, `closing inbound connection: no membership proof within ${AUTH_DEADLINE_MS / 1000} s`);
    // a graceful close waits for the stranger's streams: bounded, then cut
    await conn.close({ signal: AbortSignal.timeout(2_000) }).catch(() => conn.abort(new Error("no membership proof")));
  }

  private async respondAuth(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    const run = proveAsResponder(stream, conn, this.node.peerId.toString(), this.keys!.auth, this.hello()).then(
      (hello) => this.admit(peer, hello, conn),
      (err: Error) => this.refuse(conn, err),
    );
    this.pendingAuth.set(peer, run);
    await run.finally(() => this.pendingAuth.delete(peer));
  }

  private admit(peer: string, hello: Hello, conn: Connection): void {
    this.members.add(peer, hello.services);
    this.metrics.members.set(this.members.size);
    const path = conn.remoteAddr.toString().includes("/p2p-circuit") ? "relayed" : "direct";
    this.log.info({ peer, provides: hello.services.includes(this.tag ?? ""), path, encryption: conn.encryption }, "member authenticated");
  }

  private refuse(conn: Connection, err: Error): void {
    if (err instanceof MembershipError) {
      this.metrics.authFailures.inc();
      const peer = conn.remotePeer.toString();
      this.log.warn({ peer, addr: conn.remoteAddr.toString(), reason: err.message }, "peer refused: not a member of this network (different token?)");
      // don't hammer a peer of another network; a fixed peer restarts with a new identity anyway
      for (const t of this.dialTargets) if (t.peer === peer) t.nextAttempt = Date.now() + 15_000;
      void conn.close().catch(() => {});
    } else {
      this.log.debug({ peer: conn.remotePeer.toString(), err: err.message }, "membership exchange failed");
    }
  }

  /** A peer that broke a protocol: logged once per connection, and the connection closed. */
  private cutOff(conn: Connection, msg: string, reason?: string): void {
    if (this.cutConnections.has(conn)) return;
    this.cutConnections.add(conn);
    this.log.warn({ peer: conn.remotePeer.toString(), addr: conn.remoteAddr.toString(), ...(reason !== undefined ? { reason } : {}) }, msg);
    void conn.close({ signal: AbortSignal.timeout(2_000) }).catch(() => conn.abort(new Error(msg)));
  }

  // ---- tunnels ---------------------------------------------------------------------------

  /** Expose side: one inbound stream = one TCP connection to the target. */
  private async serveTunnel(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    const role = this.cfg.role as Extract<Role, { mode: "expose" }>;
    try {
      await this.pendingAuth.get(peer);
      const bytes = byteStream(stream);
      const reply = (code: number) => bytes.write(Uint8Array.of(code));
      if (!this.members.has(peer)) {
        // at once, without waiting for a service tag; the stranger's connection goes too, so a
        // flood of such streams costs one log line per connection, not one per stream
        this.metrics.tunnels.labels("refused").inc();
        this.cutOff(conn, "tunnel refused: peer has not proved membership");
        await reply(Status.NOT_A_MEMBER).catch(() => {});
        return void stream.abort(new Error("not a member"));
      }
      const tag = Buffer.from((await bytes.read({ bytes: 32, signal: AbortSignal.timeout(OPEN_TIMEOUT_MS) })).subarray()).toString("hex");
      if (tag !== this.tag) {
        this.metrics.tunnels.labels("unknown_service").inc();
        await reply(Status.UNKNOWN_SERVICE);
        return void (await stream.close());
      }
      const socket = await connectTcp(role.target).catch((err: Error) => {
        this.log.warn({ target: formatHostPort(role.target), err: err.message }, "target unreachable");
        return undefined;
      });
      if (socket === undefined) {
        this.metrics.tunnels.labels("target_unreachable").inc();
        await reply(Status.TARGET_UNREACHABLE);
        return void (await stream.close());
      }
      await reply(Status.OK);
      await this.carry(socket, bytes.unwrap(), peer);
    } catch (err) {
      this.log.debug({ peer, err: (err as Error).message }, "tunnel stream failed");
      stream.abort(err as Error);
    }
  }

  private async startListener(at: HostPort): Promise<void> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => void this.acceptClient(socket));
    server.maxConnections = STREAM_LIMIT;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(at.port, at.host, () => resolve());
    });
    this.listener = server;
    this.log.info({ listen: formatHostPort(this.listenAddress!) }, "accepting connections");
  }

  /** Connect side: find a provider, open a stream, fail over to the next one on error. */
  private async acceptClient(socket: Socket): Promise<void> {
    socket.on("error", () => {});
    const deadline = Date.now() + WAIT_FOR_PROVIDER_MS;
    const tried = new Set<string>();
    while (!socket.destroyed) {
      const candidates = this.members.providers(this.tag!).filter((m) => !tried.has(m.id));
      if (candidates.length === 0) {
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
        if (tried.size > 0 && this.members.providers(this.tag!).every((m) => tried.has(m.id))) tried.clear();
        continue;
      }
      const member = candidates[0];
      tried.add(member.id);
      const stream = await this.openTunnel(member.id).catch((err: Error) => {
        this.members.markFailed(member.id);
        this.log.warn({ peer: member.id, err: err.message }, "provider failed, trying another");
        return undefined;
      });
      if (stream === undefined) continue;
      member.active++;
      try {
        await this.carry(socket, stream, member.id);
      } finally {
        member.active--;
      }
      return;
    }
    this.metrics.tunnels.labels("no_provider").inc();
    this.log.warn({ service: (this.cfg.role as { service: string }).service }, "no reachable provider: connection refused");
    if (!socket.destroyed) socket.resetAndDestroy();
  }

  private async openTunnel(peer: string): Promise<Stream> {
    const signal = AbortSignal.timeout(OPEN_TIMEOUT_MS);
    const stream = await this.node.dialProtocol(peerIdFromString(peer), TUNNEL_PROTOCOL, {
      signal,
      maxOutboundStreams: STREAM_LIMIT,
      runOnLimitedConnection: true,
    });
    const bytes = byteStream(stream);
    try {
      await bytes.write(Buffer.from(this.tag!, "hex"), { signal });
      const status = (await bytes.read({ bytes: 1, signal })).get(0);
      if (status !== Status.OK) throw new Error(STATUS_TEXT[status] ?? `status ${status}`);
      return bytes.unwrap();
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    }
  }

  private async carry(socket: Socket, stream: Stream, peer: string): Promise<void> {
    this.metrics.streams.inc();
    this.metrics.tunnels.labels("opened").inc();
    try {
      const { reset } = await pipeSocketStream(socket, stream, this.metrics.counters);
      if (reset) this.log.debug({ peer }, "tunnel connection reset");
    } finally {
      this.metrics.streams.dec();
    }
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

function safeMultiaddr(a: string): Multiaddr[] {
  try {
    return [multiaddr(a)];
  } catch {
    return [];
  }
}
