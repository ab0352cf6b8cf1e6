// The libp2p node every agent mode runs: TCP + Noise + yamux, circuit relay v2, optional mDNS.
// Limits are sized for tunnels carrying ~1,000+ concurrent TCP connections (one stream each):
// libp2p's defaults (32 inbound / 64 outbound streams per protocol, 10 early streams, 5 inbound
// connections per second per host, 4 MiB read buffer under a 16 MiB yamux window) break them.
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { noiseAesGcm } from "./encryption.ts";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { mdns } from "@libp2p/mdns";
import { circuitRelayServer, circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import type { PeerInfo } from "@libp2p/interface";
import { pendingGater } from "./gater.ts";
import { liveness } from "./liveness.ts";
import { publicDirect, relayGaterHooks, switchable, type RelayAccess } from "./member-relay.ts";

export const STREAM_LIMIT = 8192;
/** libp2p's default is 10 s: every idle stranger held a pending slot that long. */
export const INBOUND_UPGRADE_TIMEOUT_MS = 5_000;
/** yamux per-stream receive window: big enough for bulk throughput on a LAN/WAN path. */
const STREAM_WINDOW = 4 * 1024 * 1024;

/** The muxer settings of every agent (the in-memory stream tests use them too). */
export const YAMUX_OPTIONS = {
  maxInboundStreams: STREAM_LIMIT,
  maxOutboundStreams: STREAM_LIMIT,
  maxEarlyStreams: 1024,
  maxMessageSize: 1024 * 1024,
  enableKeepAlive: true,
  streamOptions: {
    initialStreamWindowSize: STREAM_WINDOW,
    maxStreamWindowSize: STREAM_WINDOW,
    // must exceed the window, or a paused stream is reset under bulk load
    maxReadBufferLength: 2 * STREAM_WINDOW,
    inactivityTimeout: 0,
  },
} satisfies Parameters<typeof yamux>[0];

export interface NodeOptions {
  listen: Multiaddr[];
  /** Listen on relays too (reservations), so peers that only know a relay can reach us. */
  viaRelays: boolean;
  relayServer: boolean;
  mdnsTag?: string;
  /**
   * Kademlia DHT (the standard /ipfs/kad/1.0.0): members are clients, bootstrap nodes and relays
   * servers. Off when undefined. Private addresses are never taken from the DHT.
   */
  dht?: "client" | "server";
  /**
   * A private DHT (every bootstrap and listen address private, e.g. bootstrap nodes inside a
   * cluster network): private addresses are what peers are reached by, so they are kept.
   */
  dhtPrivate?: boolean;
  /** AutoNAT (reachability) and DCUtR (hole punching from a relayed connection to a direct one). */
  holePunching?: boolean;
  /**
   * Public infrastructure (relays, bootstrap nodes): its listen addresses are announced as they
   * are. libp2p otherwise keeps a public address to itself until AutoNAT has confirmed it.
   */
  announceListen?: boolean;
  /**
   * Addresses to announce besides those (`--p2p-announce`): a port forward's public address, which
   * libp2p cannot learn (identify ignores observed TCP addresses). A public one is what turns a
   * member's relay on.
   */
  announce?: Multiaddr[];
  /**
   * A member's relay (member-relay.ts): a circuit-relay v2 server, off until the agent switches
   * it on (`node.services.relay.enable()`), for the peers `access` allows only, without limits.
   */
  memberRelay?: RelayAccess;
  /** DCUtR exchanges (punch.ts): each attempt, then whether it ended in a direct connection */
  onPunch?: (result: "attempt" | "success", peer: string) => void;
  /** a relayed connection DCUtR replaced stays while streams of these protocols use it (punch.ts lingering) */
  relayedBusy?: (protocols: string[]) => boolean;
  /** a peer mDNS found (under our network's service tag) */
  onMdnsPeer?: (peer: PeerInfo) => void;
}

/** An mDNS discovery that also tells `onPeer` what it finds (libp2p's peer:discovery mixes in the DHT's peers). */
function telling(factory: ReturnType<typeof mdns>, onPeer?: (peer: PeerInfo) => void): ReturnType<typeof mdns> {
  return (components) => {
    const d = factory(components);
    if (onPeer !== undefined) d.addEventListener("peer", (evt) => onPeer(evt.detail));
    return d;
  };
}

/** Specific listen addresses, never a wildcard, port 0 or a circuit. */
const specific = (listen: string[]) => listen.filter((a) => !/\/ip[46]\/(0\.0\.0\.0|::)\/|\/tcp\/0(\/|$)|p2p-circuit/.test(a));

/** The circuit relay server's settings: members' tunnels are long-lived and bulky, no per-circuit data or time limit. */
const RELAY_SERVER = {
  reservations: { maxReservations: 1024, applyDefaultLimit: false },
  maxInboundHopStreams: STREAM_LIMIT,
  maxOutboundHopStreams: STREAM_LIMIT,
  maxOutboundStopStreams: STREAM_LIMIT,
};

/**
 * The DHT, AutoNAT and DCUtR, loaded only when asked for, by a specifier bundlers leave alone:
 * they are most of the code, and the module (which Pepr bundles into one file, stored in its Helm
 * release Secret, limited to 1 MiB) never runs a DHT.
 */
async function optionalServices(opts: NodeOptions): Promise<{ services: Record<string, never>; tcp: typeof tcp }> {
  if (opts.dht === undefined && opts.holePunching !== true) return { services: {}, tcp };
  const mod = (await import(new URL(dhtServicesFile(), import.meta.url).href)) as typeof import("./dht-services.ts");
  // hole punching: every IPv4 dial from one local port, so that a NAT maps them all alike (punch.ts)
  const port = opts.holePunching === true ? await mod.freeDialPort() : undefined;
  return {
    services: mod.dhtServices(opts) as Record<string, never>,
    tcp: port === undefined ? tcp : (init) => mod.samePortDials(tcp(init), port),
  };
}
// bundled (hack/build-agent.ts), this code and dht-services live in .mjs files next to each other;
// read when used: in Pepr's CommonJS bundle of the module, import.meta.url is undefined
const dhtServicesFile = () => (String(import.meta.url).endsWith(".mjs") ? "./dht-services.mjs" : "./dht-services.ts");

export async function createNode(opts: NodeOptions): Promise<Libp2p> {
  const listen = opts.listen.map((a) => a.toString());
  if (opts.viaRelays) listen.push("/p2p-circuit");
  const optional = await optionalServices(opts);
  return createLibp2p({
    addresses: {
      listen,
      // infrastructure announces its listen addresses; a member only its configured public ones
      // (libp2p would otherwise wait for AutoNAT, which needs observers in 4 different /8s)
      appendAnnounce: [
        ...(opts.announceListen === true ? specific(listen) : publicDirect(specific(listen).map((a) => multiaddr(a))).map(String)),
        ...(opts.announce ?? []).map(String),
      ],
    },
    transports: [
      optional.tcp({ inboundSocketInactivityTimeout: 5 * 60_000, outboundSocketInactivityTimeout: 5 * 60_000 }),
      circuitRelayTransport({ maxInboundStopStreams: STREAM_LIMIT, maxOutboundStopStreams: STREAM_LIMIT }),
    ],
    // preferred first; plain Noise for peers that only speak it
    connectionEncrypters: [noiseAesGcm(), noise()],
    streamMuxers: [yamux(YAMUX_OPTIONS)],
    // its heartbeat aborts busy connections behind a slow link: liveness.ts instead
    connectionMonitor: { enabled: false },
    connectionManager: {
      maxConnections: 2048,
      inboundConnectionThreshold: 200,
      maxIncomingPendingConnections: 256,
      // a connection that has not finished Noise + yamux by then is not a member's (ms on a LAN)
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS,
      dialTimeout: 10_000,
    },
    // per source, a few connections before encryption: strangers cannot fill the pending slots
    connectionGater: pendingGater(undefined, opts.memberRelay !== undefined ? relayGaterHooks(opts.memberRelay) : {}),
    peerDiscovery: opts.mdnsTag !== undefined ? [telling(mdns({ serviceTag: opts.mdnsTag, interval: 2_000 }), opts.onMdnsPeer)] : [],
    services: {
      identify: identify(),
      liveness: liveness(),
      ...optional.services,
      ...(opts.relayServer ? { relay: circuitRelayServer(RELAY_SERVER) } : {}),
      ...(opts.memberRelay !== undefined ? { relay: switchable(circuitRelayServer(RELAY_SERVER)) } : {}),
    },
  });
}
