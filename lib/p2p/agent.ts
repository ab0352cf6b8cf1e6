// One agent process: a libp2p node plus one role (expose, connect, relay). Members find each
// other (discovery.ts), prove the token on every connection (member-gate.ts) and carry one
// stream per tunnelled TCP connection (tunnels.ts); a relay only relays and keeps rendezvous.
import { createConnection, type Server } from "node:net";
import type { Libp2p } from "libp2p";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { Connection } from "@libp2p/interface";
import { isPrivate } from "@libp2p/utils";
import { createNode, STREAM_LIMIT } from "./node.ts";
import { deriveKeys, serviceTag, type DerivedKeys, type NetworkToken } from "./token.ts";
import { AUTH_PROTOCOL } from "./membership.ts";
import { RENDEZVOUS_PROTOCOL, RendezvousTable, serveRendezvous } from "./rendezvous.ts";
import { Discovery, mdnsServiceTag } from "./discovery.ts";
import { connectionCutter, MemberGate } from "./member-gate.ts";
import { isTunnelProtocol, listenForClients, moveTunnels, serveMove, serveTunnel, TUNNEL_PROTOCOLS, warmStreams, type TunnelOptions } from "./tunnels.ts";
import { OpenTunnels, TUNNEL_MOVE_PROTOCOL } from "./tunnel-move.ts";
import { DhtDiscovery } from "./dht.ts";
import { createMetrics, pathOf, type Metrics } from "./metrics.ts";
import { startHealthServer } from "./health.ts";
import { memberRelaying, PROOF_WAIT_MS, RelayAccess } from "./member-relay.ts";
import { formatHostPort, type HostPort } from "./addr.ts";
import type { Logger } from "./log.ts";

const TICK_MS = 1_000;

export type Role = { mode: "expose"; service: string; target: HostPort } | { mode: "connect"; service: string; listen: HostPort } | { mode: "relay" };

export interface AgentConfig {
  role: Role;
  token?: NetworkToken;
  p2pListen: Multiaddr[];
  /** announced besides the listen addresses (a port forward's public address) */
  p2pAnnounce?: Multiaddr[];
  peers: Multiaddr[];
  /** peers embedded in the network token (dialed like `peers`; told apart in logs) */
  tokenPeers?: Multiaddr[];
  mdns: boolean;
  /** Reachable only through relays: no direct listener, no direct addresses shared. */
  noDirect?: boolean;
  healthListen?: HostPort;
  log: Logger;
  /** DHT bootstrap peers (dialed like configured peers); see bootstrap.ts */
  bootstrap?: Multiaddr[];
  /** where the bootstrap list came from, for the start-up log */
  bootstrapSource?: string;
  /** Kademlia DHT: members are clients, relays and bootstrap nodes servers; off when undefined */
  dht?: "client" | "server";
  /** relay mode: carry circuits and keep rendezvous (default); false: a bootstrap node (DHT only) */
  hop?: boolean;
}

export class Agent {
  readonly metrics: Metrics = createMetrics();
  node!: Libp2p;
  private readonly keys?: DerivedKeys;
  private readonly tag?: string;
  private gate?: MemberGate;
  private discovery?: Discovery;
  /** the connect side's ready tunnel streams (tunnels.ts) */
  private warm?: ReturnType<typeof warmStreams>;
  private readonly closers: Array<() => Promise<void> | void> = [];
  private listener?: Server;
  private timer?: NodeJS.Timeout;
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
  }

  /** Address of the local TCP listener (connect mode), useful when started on port 0. */
  get listenAddress(): HostPort | undefined {
    const a = this.listener?.address();
    return a !== null && typeof a === "object" ? { host: a.address, port: a.port } : undefined;
  }

  async start(): Promise<void> {
    const { role } = this.cfg;
    const member = role.mode !== "relay";
    // with the DHT (the public network), a member may relay for members (member-relay.ts)
    const relayAccess = member && this.cfg.dht !== undefined ? new RelayAccess() : undefined;
    this.node = await createNode({
      listen: this.cfg.noDirect === true ? [] : this.cfg.p2pListen,
      viaRelays: role.mode !== "relay",
      relayServer: role.mode === "relay" && this.cfg.hop !== false,
      mdnsTag: this.cfg.mdns ? mdnsServiceTag(this.keys?.fingerprint) : undefined,
      dht: this.cfg.dht,
      dhtPrivate: privateNetwork([...(this.cfg.bootstrap ?? []), ...this.cfg.p2pListen]),
      // reachability and hole punching come with the DHT: both need the public network it finds
      holePunching: this.cfg.dht !== undefined,
      announceListen: role.mode === "relay",
      announce: this.cfg.noDirect === true ? [] : this.cfg.p2pAnnounce,
      memberRelay: relayAccess,
      onPunch: (result, peer) => {
        this.metrics.holePunch.labels(result).inc();
        this.log.debug({ peer, result }, "hole punching (DCUtR)");
        // ready streams on the relayed connection would keep it lingering: the next ones open on the direct one
        if (result === "success") this.warm?.drop(peer);
      },
      // tunnels on a relayed connection outlive its replacement by a punched one
      relayedBusy: (protocols) => protocols.some(isTunnelProtocol),
      // mDNS answers carry our network's tag: a peer found there may be a member; DHT peers are not dialed for being found
      onMdnsPeer: (peer) => {
        if (this.discovery !== undefined && this.gate !== undefined && this.node.getConnections(peer.id).length === 0) this.discovery.dial(peer.id, "mdns");
      },
    });
    this.closers.push(() => this.node.stop());
    const handlerOpts = { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT, runOnLimitedConnection: true };
    const cutOff = connectionCutter(this.log);
    const discovery = new Discovery({
      node: this.node,
      peers: [
        ...this.cfg.peers.map((addr) => ({ addr, via: "configured" as const })),
        ...(this.cfg.tokenPeers ?? []).map((addr) => ({ addr, via: "token" as const })),
        ...(this.cfg.bootstrap ?? []).map((addr) => ({ addr, via: "bootstrap" as const })),
      ],
      rendezvousKey: this.keys?.rendezvous,
      noDirect: this.cfg.noDirect === true,
      isMember: (peer) => this.gate?.members.has(peer) ?? false,
      metrics: this.metrics,
      log: this.log,
    });
    this.discovery = discovery;

    if (role.mode === "relay" && this.cfg.hop === false) {
      // a bootstrap node: the DHT server is all it runs
    } else if (role.mode === "relay") {
      const table = new RendezvousTable();
      await this.node.handle(
        RENDEZVOUS_PROTOCOL,
        (stream, conn) => serveRendezvous(table, stream, conn, (err) => cutOff(conn, "closing connection: malformed rendezvous request", err.message)),
        handlerOpts,
      );
    } else {
      const gate = new MemberGate({
        node: this.node,
        authKey: this.keys!.auth,
        hello: { services: role.mode === "expose" ? [this.tag!] : [] },
        tag: this.tag!,
        metrics: this.metrics,
        log: this.log,
        onRefused: (peer) => discovery.backOff(peer, 15_000),
        foundVia: (peer) => discovery.foundVia(peer) ?? "dialed us",
      });
      this.gate = gate;
      if (relayAccess !== undefined) relayAccess.allow = (peer) => gate.admitted(peer, PROOF_WAIT_MS);
      this.closers.push(() => gate.stop());
      const tunnels: TunnelOptions = {
        node: this.node,
        tag: this.tag!,
        members: gate.members,
        settled: (peer) => gate.settled(peer),
        cutOff,
        metrics: this.metrics,
        log: this.log,
        warm: role.mode === "connect" ? warmStreams(this.node) : undefined,
        open: new OpenTunnels(),
      };
      this.warm = tunnels.warm;
      if (tunnels.warm !== undefined) this.closers.push(() => tunnels.warm!.close());
      await this.node.handle(AUTH_PROTOCOL, (stream, conn) => gate.respond(stream, conn), handlerOpts);
      if (role.mode === "expose") {
        await this.node.handle(TUNNEL_PROTOCOLS, (stream, conn) => serveTunnel(tunnels, role.target, stream, conn), handlerOpts);
        await this.node.handle(TUNNEL_MOVE_PROTOCOL, (stream, conn) => serveMove(tunnels, stream, conn), { ...handlerOpts, runOnLimitedConnection: false });
      }
      this.node.addEventListener("connection:open", (evt) => {
        if (evt.detail.direction === "outbound") gate.initiate(evt.detail);
        else gate.require(evt.detail);
        this.countPath(evt.detail);
        // tunnels opened over a relay move to a direct connection to their peer (hole punched)
        if (role.mode === "connect") moveTunnels(tunnels, evt.detail);
      });
      this.node.addEventListener("peer:disconnect", (evt) => {
        tunnels.warm?.drop(evt.detail.toString());
        if (gate.forget(evt.detail.toString())) this.log.info({ peer: evt.detail.toString() }, "member disconnected");
      });
      if (this.cfg.dht !== undefined) {
        const dht = new DhtDiscovery({
          node: this.node,
          keys: this.keys!,
          service: role.service,
          mode: role.mode === "expose" ? "provide" : "find",
          log: this.log,
          satisfied: () => gate.members.providers(this.tag!).length > 0,
          onFirstFound: (seconds) => this.metrics.discoverySeconds.set(seconds),
          onProvider: (peer) => {
            if (this.node.getConnections(peer.id).length > 0) return;
            void this.node.peerStore.merge(peer.id, { multiaddrs: peer.multiaddrs }).then(() => discovery.dial(peer.id, "dht"));
          },
        });
        dht.start();
        this.closers.push(() => dht.stop());
        this.closers.push(memberRelaying({ node: this.node, keys: this.keys!, log: this.log, dial: (peer) => discovery.dial(peer, "dht") }));
      }
      if (role.mode === "connect") {
        this.listener = await listenForClients(tunnels, role.listen, role.service);
        this.log.info({ listen: formatHostPort(this.listenAddress!) }, "accepting connections");
      }
    }
    if (this.cfg.healthListen !== undefined) {
      const server = await startHealthServer(this.cfg.healthListen, { ready: () => this.ready() }, this.metrics.registry);
      this.closers.push(() => new Promise<void>((r) => server.close(() => r())));
      const a = server.address();
      if (a !== null && typeof a === "object") this.log.info({ health: formatHostPort({ host: a.address, port: a.port }) }, "health endpoint listening");
    }
    this.log.info(
      {
        mode: this.cfg.hop === false ? "bootstrap" : role.mode,
        peerId: this.node.peerId.toString(),
        addrs: this.node.getMultiaddrs().map(String),
        network: this.keys?.fingerprint,
        dht: this.cfg.dht ?? "off",
        ...(this.cfg.bootstrapSource !== undefined ? { bootstrap: this.cfg.bootstrapSource } : {}),
      },
      "agent started",
    );
    this.timer = setInterval(() => void discovery.tick(), TICK_MS);
    void discovery.tick();
  }

  /**
   * Connections by path; with hole punching on, a direct connection to a peer already reached
   * through a relay is logged (hole punches are counted by DCUtR exchange: punch.ts countPunches).
   */
  private countPath(conn: Connection): void {
    const path = pathOf(conn);
    this.metrics.connections.labels(path).inc();
    if (this.cfg.dht === undefined || path === "relayed") return;
    const relayed = this.node.getConnections(conn.remotePeer).some((c) => c !== conn && c.status === "open" && pathOf(c) === "relayed");
    if (!relayed) return;
    const peer = conn.remotePeer.toString();
    this.log.info(
      { peer, found: this.discovery?.foundVia(peer) ?? "dialed us", path, addr: conn.remoteAddr.toString() },
      "direct connection to a peer reached through a relay (hole punched)",
    );
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.listener?.close();
    for (const close of this.closers.reverse()) await close();
  }

  async ready(): Promise<{ ok: boolean; reason: string }> {
    const { role } = this.cfg;
    if (role.mode === "relay") return { ok: true, reason: "relay running" };
    if (role.mode === "connect") {
      const n = this.gate?.members.providers(this.tag!).length ?? 0;
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
}

/** Every address private (loopback, RFC 1918, ...): a DHT of our own on a private network. */
function privateNetwork(addrs: Multiaddr[]): boolean {
  const ip = addrs.filter((a) => a.getComponents().some((c) => c.name === "ip4" || c.name === "ip6"));
  return ip.length > 0 && ip.every((a) => isPrivate(a));
}
