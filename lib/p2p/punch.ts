// TCP hole punching between members behind NATs that map by source port (endpoint-independent
// mapping: most home routers, Linux MASQUERADE keeping ports, natlab-a and natlab-b), with the
// standard DCUtR protocol. Two pieces, both needed:
//
// 1. samePortDials(tcp): every outgoing IPv4 TCP dial binds one local port (the port the first
//    such dial got; an explicit bind, to which libuv adds SO_REUSEADDR, and no listener on that
//    port, so Linux lets every dial share it as long as the remote ends differ). The NAT maps all
//    of them to one public ip:port, which every peer sees (identify's observed address).
//    @libp2p/tcp dials from a new ephemeral port each time, so its mappings never repeat, and a
//    dial cannot share the listening port: Node has no SO_REUSEPORT for client sockets.
// 2. punchingDcutr(): the standard DCUtR service, also told that mapping (an observed address
//    that peers at two or more different IP addresses reported alike) as one of our addresses in
//    its CONNECT message. Both sides then dial each other's mapping from their bound port at the
//    same moment (TCP simultaneous open); each NAT takes the other's SYN for the answer to its
//    own. identify drops TCP observed addresses (js-libp2p #2620) and AutoNAT cannot confirm one
//    behind a NAT that drops unsolicited SYNs, which is why stock DCUtR never had one to send.
//
// The mapping goes only to the peer we punch to, never into identify or the DHT: a NAT drops
// dials to it out of the blue, and each would cost a dialer libp2p's 6 s per-address timeout
// before it tried the relay. Behind a NAT picking a random port per connection (natlab-c) no
// two observers agree, no mapping is used, and the members stay on the relay.
import { createServer, type Socket } from "node:net";
import type { IdentifyResult, PeerId, Transport } from "@libp2p/interface";
import type { AddressManager } from "@libp2p/interface-internal";
import { isPrivate } from "@libp2p/utils";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import type { TCPDialOptions } from "@libp2p/tcp";

/** Distinct observer IP addresses that must report the same mapping before it is used. */
export const MIN_OBSERVERS = 2;
/** An observation older than this no longer counts (NATs drop idle mappings in minutes). */
export const OBSERVATION_TTL_MS = 10 * 60_000;

/** The public ip4/tcp mappings others observed for our dials, each by the observers' IPs. */
export class ObservedMappings {
  private readonly seen = new Map<string, Map<string, number>>();

  /** `observed`: what a peer at `observerIp` saw as our address on a connection we dialed. */
  record(observed: Multiaddr, observerIp: string, now = Date.now()): void {
    const key = mappingKey(observed);
    if (key === undefined) return;
    let by = this.seen.get(key);
    if (by === undefined) this.seen.set(key, (by = new Map()));
    by.set(observerIp, now);
    // bounded: only the most recently seen mappings are kept
    if (this.seen.size > 16) this.seen.delete(this.seen.keys().next().value!);
  }

  /** Mappings confirmed by MIN_OBSERVERS observers within OBSERVATION_TTL_MS, most observers first. */
  confirmed(now = Date.now()): Multiaddr[] {
    const out: Array<{ key: string; n: number }> = [];
    for (const [key, by] of this.seen) {
      for (const [ip, at] of by) if (now - at > OBSERVATION_TTL_MS) by.delete(ip);
      if (by.size === 0) this.seen.delete(key);
      else if (by.size >= MIN_OBSERVERS) out.push({ key, n: by.size });
    }
    return out.sort((a, b) => b.n - a.n).map((m) => multiaddr(m.key));
  }
}

/** "/ip4/A/tcp/P" of a public IPv4 TCP address, else undefined. */
function mappingKey(ma: Multiaddr): string | undefined {
  const parts = ma.getComponents();
  if (parts.length < 2 || parts[0].name !== "ip4" || parts[1].name !== "tcp") return undefined;
  const bare = multiaddr(`/ip4/${parts[0].value}/tcp/${parts[1].value}`);
  return isPrivate(bare) ? undefined : bare.toString();
}

/** The IPv4 address of a direct TCP connection's remote end, else undefined (relayed, IPv6, ...). */
function observerIp(remoteAddr: Multiaddr): string | undefined {
  const s = remoteAddr.toString();
  if (s.includes("/p2p-circuit")) return undefined;
  const parts = remoteAddr.getComponents();
  return parts[0]?.name === "ip4" && parts[1]?.name === "tcp" ? parts[0].value : undefined;
}

/** The bits of TCP this module changes: its socket connect (instance method of @libp2p/tcp's TCP). */
interface TcpWithConnect extends Transport {
  _connect(ma: Multiaddr, options: TCPDialOptions): Promise<Socket>;
}

/** Errors of binding the shared port (taken by another process; a second dial to the same remote end). */
const BIND_ERRORS = new Set(["EADDRINUSE", "EADDRNOTAVAIL"]);

export interface DialPort {
  /** the local port every IPv4 dial binds (when unset, the first dial's ephemeral port) */
  port?: number;
}

/**
 * A free ephemeral port for DialPort, chosen before any dial: concurrent first dials (the
 * bootstrap nodes, at start) would otherwise each get their own, and observers disagree.
 */
export async function freeDialPort(): Promise<DialPort> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve({}));
    s.listen(0, "0.0.0.0", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a !== null ? { port: a.port } : {}));
    });
  });
}

/**
 * Wraps @libp2p/tcp so that every IPv4 dial leaves from one local port (see above). A dial
 * that cannot bind it (the port taken by another process, or a second connection to the same
 * remote address and port) falls back to an ephemeral port, as @libp2p/tcp does by itself.
 */
export function samePortDials<C>(factory: (components: C) => Transport, shared: DialPort = {}): (components: C) => Transport {
  return (components) => {
    const t = factory(components) as TcpWithConnect;
    if (typeof t._connect !== "function") throw new Error("samePortDials: @libp2p/tcp has no _connect any more");
    const connect = t._connect.bind(t);
    t._connect = async (ma, options) => {
      if (ma.getComponents()[0]?.name !== "ip4") return connect(ma, options);
      try {
        // port 0: an explicit bind to an ephemeral port, so that it carries SO_REUSEADDR too
        const socket = await connect(ma, { ...options, localAddress: "0.0.0.0", localPort: shared.port ?? 0 } as TCPDialOptions);
        shared.port ??= socket.localPort;
        return socket;
      } catch (err) {
        if (!BIND_ERRORS.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
        return connect(ma, options);
      }
    };
    return t;
  };
}

interface PunchComponents {
  addressManager: AddressManager;
  peerId: PeerId;
  events: EventTarget;
  connectionManager: { getConnections(peer: PeerId): Array<{ status: string; remoteAddr: Multiaddr }> };
}

/** Each DCUtR exchange: "attempt" when it starts, "success" when it ended with a direct connection. */
export type PunchListener = (result: "attempt" | "success", peer: string) => void;

/** Whether the peer is now reached directly: an open connection that is no circuit. */
export function hasDirect(conns: Array<{ status: string; remoteAddr: Multiaddr }>): boolean {
  return conns.some((c) => c.status === "open" && !c.remoteAddr.toString().includes("/p2p-circuit"));
}

/** The two entry points of @libp2p/dcutr's service (3.x): B's upgrade of an inbound relayed connection, A's handler. */
interface DcutrEntries {
  upgradeInbound(relayed: RelayedConnection): Promise<void>;
  handleIncomingUpgrade(stream: unknown, relayed: RelayedConnection): Promise<void>;
}

/** What DCUtR and lingering() use of the relayed connection it upgrades. */
interface RelayedConnection {
  remotePeer: PeerId;
  status: string;
  streams: Array<{ protocol: string }>;
  close(options?: { signal?: AbortSignal }): Promise<void>;
  abort(err: Error): void;
}

/**
 * A relayed connection that DCUtR replaced lives on this long at most while streams still use it
 * (tunnels move to the direct connection within a round trip, tunnel-move.ts; those of agents
 * before tunnel 1.2.0 cannot).
 */
export const LINGER_MAX_MS = 15 * 60_000;
const LINGER_CHECK_MS = 1_000;

/**
 * The relayed connection as DCUtR sees it, with a close() that waits: DCUtR closes it as soon as
 * the direct connection is up, which resets every tunnel on it. Closed once `busy` says no stream
 * on it needs it any more (new streams take the direct connection: tunnels.ts pickConnection),
 * at the latest after `maxMs`. Without `busy`, the connection itself.
 */
export function lingering<T extends Omit<RelayedConnection, "remotePeer">>(conn: T, busy?: (protocols: string[]) => boolean, maxMs = LINGER_MAX_MS): T {
  if (busy === undefined) return conn;
  return new Proxy(conn, {
    get(target, prop) {
      if (prop === "close") return async () => closeWhenIdle(target, busy, Date.now() + maxMs);
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function closeWhenIdle(conn: Omit<RelayedConnection, "remotePeer">, busy: (protocols: string[]) => boolean, until: number): void {
  if (conn.status !== "open") return;
  if (!busy(conn.streams.map((s) => s.protocol)) || Date.now() >= until) {
    void conn.close({ signal: AbortSignal.timeout(2_000) }).catch((err: Error) => conn.abort(err));
    return;
  }
  setTimeout(() => closeWhenIdle(conn, busy, until), LINGER_CHECK_MS).unref();
}

/**
 * Test knob: milliseconds B waits before it starts hole punching over a new relayed connection
 * (the NAT lab's test of a tunnel opened over the relay and moved to the punched connection).
 */
export const PUNCH_DELAY_ENV = "ENTANGLE_TEST_PUNCH_DELAY_MS";

export interface PunchOptions {
  /** each DCUtR exchange */
  onPunch?: PunchListener;
  /** B waits this long before punching (default: $ENTANGLE_TEST_PUNCH_DELAY_MS, else 0) */
  delayMs?: number;
  /** keep a replaced relayed connection while its streams' protocols need it (lingering) */
  relayedBusy?: (protocols: string[]) => boolean;
}

/**
 * Counts DCUtR exchanges on a DCUtR service (@libp2p/dcutr has no events) and lets the relayed
 * connection it replaces linger: both of its entry points are wrapped before it starts (it
 * registers them in start()). An exchange succeeded when it left an open direct connection to
 * the peer; it ends the same way whether it threw or not (B's side retries and swallows errors).
 */
export function countPunches<S>(service: S, connections: PunchComponents["connectionManager"], o: PunchOptions): S {
  const d = service as unknown as DcutrEntries;
  if (typeof d.upgradeInbound !== "function" || typeof d.handleIncomingUpgrade !== "function") {
    throw new Error("countPunches: @libp2p/dcutr has no upgradeInbound/handleIncomingUpgrade any more");
  }
  const exchange = async (relayed: RelayedConnection, run: (relayed: RelayedConnection) => Promise<void>): Promise<void> => {
    const peer = relayed.remotePeer;
    o.onPunch?.("attempt", peer.toString());
    try {
      await run(lingering(relayed, o.relayedBusy));
    } finally {
      if (hasDirect(connections.getConnections(peer))) o.onPunch?.("success", peer.toString());
    }
  };
  const upgradeInbound = d.upgradeInbound.bind(d);
  const handleIncomingUpgrade = d.handleIncomingUpgrade.bind(d);
  const delayMs = o.delayMs ?? (Number(process.env[PUNCH_DELAY_ENV] ?? 0) || 0);
  d.upgradeInbound = async (relayed) => {
    if (delayMs > 0) {
      await new Promise((r) => setTimeout(r, delayMs));
      if (relayed.status !== "open") return;
    }
    await exchange(relayed, upgradeInbound);
  };
  d.handleIncomingUpgrade = (stream, relayed) => exchange(relayed, (r) => handleIncomingUpgrade(stream, r));
  return service;
}

/**
 * Wraps a DCUtR service factory (@libp2p/dcutr `dcutr()`): its address manager also lists the
 * confirmed mappings of `mappings`, which it fills from identify results of connections we dialed;
 * its exchanges are counted and the relayed connections it replaces linger (countPunches).
 */
export function punchingDcutr<C extends object>(
  factory: (components: C) => unknown,
  mappings = new ObservedMappings(),
  punches?: PunchOptions,
): (components: C) => unknown {
  return (components) => {
    const c = components as unknown as PunchComponents;
    c.events.addEventListener("peer:identify", (evt) => {
      const { observedAddr, connection } = (evt as CustomEvent<IdentifyResult>).detail;
      if (observedAddr === undefined || connection.direction !== "outbound") return;
      const ip = observerIp(connection.remoteAddr);
      if (ip !== undefined) mappings.record(observedAddr, ip);
    });
    const real = c.addressManager;
    const addressManager = new Proxy(real, {
      get(target, prop) {
        if (prop !== "getAddresses") return Reflect.get(target, prop, target) as unknown;
        return (): Multiaddr[] => {
          const own = target.getAddresses();
          const known = new Set(own.map(String));
          const extra = mappings
            .confirmed()
            .map((m) => m.encapsulate(`/p2p/${c.peerId.toString()}`))
            .filter((m) => !known.has(m.toString()));
          return [...own, ...extra];
        };
      },
    });
    const service = factory(new Proxy(components, { get: (t, p) => (p === "addressManager" ? addressManager : (Reflect.get(t, p) as unknown)) }) as C);
    return punches === undefined ? service : countPunches(service, c.connectionManager, punches);
  };
}
