// Members relay for members (issue 9): when hole punching fails (a symmetric NAT such as
// natlab-c's), two members behind NATs need a relay both can reach. Public circuit-relay v2
// relays carry little (they limit data and time); a member with a public address carries
// members' tunnels without limits and nobody else's.
//
// - Every member with the DHT on has a circuit-relay v2 server, switched off (node.ts): its hop
//   protocol is not even spoken until the member knows it is publicly reachable, that is until
//   one of its announced addresses is public and direct (a configured public listen address, or
//   one AutoNAT confirmed). Then it switches on and announces itself on the DHT under a key
//   derived from the token (providerKey(MEMBER_RELAY_SERVICE)): only members can look it up.
// - Members look that key up and dial what they find; libp2p's relay client then reserves there
//   when it needs a reservation (its other relay gone, as with any relay it knows of).
// - The connection gater (gater.ts) refuses a reservation, and a relayed connection, unless the
//   peers have proved membership (member-gate.ts) on their connection to us: a stranger can
//   neither reserve nor reach anyone through us.
import type { Libp2p } from "libp2p";
import type { ConnectionGater, PeerId } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import { isPrivate } from "@libp2p/utils";
import { peerIdFromString } from "@libp2p/peer-id";
import { DhtDiscovery } from "./dht.ts";
import type { DerivedKeys } from "./token.ts";
import type { Logger } from "./log.ts";

/** The "service" member relays are provided under on the DHT (no service name can contain a NUL). */
export const MEMBER_RELAY_SERVICE = "\0member-relay";
/** Member relays are looked up this often while none is connected. */
export const RELAY_SEARCH_MS = 10_000;
/** How long a reservation or relay request waits for its peer's membership proof to end. */
export const PROOF_WAIT_MS = 5_000;

/**
 * Who may use a member's relay: filled in once the member gate exists (after the node, whose
 * gater asks it). Until then, and for peers it refuses, nobody.
 */
export class RelayAccess {
  allow?: (peer: string) => Promise<boolean>;

  async allowed(peer: PeerId): Promise<boolean> {
    return this.allow !== undefined && (await this.allow(peer.toString()));
  }
}

/** The connection gater's relay hooks of a member relay: members only, both ends of a circuit. */
export function relayGaterHooks(access: RelayAccess): Pick<ConnectionGater, "denyInboundRelayReservation" | "denyOutboundRelayedConnection"> {
  return {
    denyInboundRelayReservation: async (source) => !(await access.allowed(source)),
    denyOutboundRelayedConnection: async (source, destination) => !(await access.allowed(source)) || !(await access.allowed(destination)),
  };
}

/** Addresses that show we are publicly reachable: direct (no circuit), IP, not private. */
export function publicDirect(addrs: Multiaddr[]): Multiaddr[] {
  return addrs.filter((a) => {
    const s = a.toString();
    return /^\/ip[46]\//.test(s) && !s.includes("/p2p-circuit") && isPrivate(a) !== true;
  });
}

interface Startable {
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** A service libp2p starts and stops as usual, but whose start is held until `enable()`. */
export type Switchable<S> = S & { enable(): Promise<void>; readonly enabled: boolean };

export function switchable<C, S extends object>(factory: (components: C) => S): (components: C) => Switchable<S> {
  return (components) => {
    const service = factory(components) as S & Startable;
    const start = service.start.bind(service);
    const stop = service.stop.bind(service);
    let enabled = false;
    let running = false;
    return Object.defineProperties(service, {
      start: {
        value: async () => {
          running = true;
          if (enabled) await start();
        },
      },
      stop: {
        value: async () => {
          running = false;
          if (enabled) await stop();
        },
      },
      enable: {
        value: async () => {
          if (enabled) return;
          enabled = true;
          if (running) await start();
        },
      },
      enabled: { get: () => enabled },
    }) as unknown as Switchable<S>;
  };
}

export interface MemberRelayingOptions {
  node: Libp2p;
  keys: DerivedKeys;
  log: Logger;
  /** reach a member relay found on the DHT (discovery.ts) */
  dial(peer: PeerId): void;
}

/**
 * A member's part in member relaying (see the top of this file): switch our relay on once an
 * announced address is public and direct, then announce it on the DHT; meanwhile look member
 * relays up and dial them. Returns what stops it.
 */
export function memberRelaying(o: MemberRelayingOptions): () => void {
  const { node, log } = o;
  const server = (node.services as { relay?: Switchable<Startable> }).relay;
  const found = new Set<string>();
  const finder = new DhtDiscovery({
    node,
    keys: o.keys,
    service: MEMBER_RELAY_SERVICE,
    mode: "find",
    what: "member relay",
    log,
    // most networks have none: a look-up every 2 s (a service's pace) would load every agent
    searchEveryMs: RELAY_SEARCH_MS,
    satisfied: () => [...found].some((id) => node.getConnections(peerIdFromString(id)).length > 0),
    onProvider: (peer) => {
      found.add(peer.id.toString());
      if (node.getConnections(peer.id).length > 0) return;
      void node.peerStore.merge(peer.id, { multiaddrs: peer.multiaddrs }).then(() => o.dial(peer.id));
    },
  });
  finder.start();
  let provider: DhtDiscovery | undefined;
  const check = (): void => {
    if (server === undefined || server.enabled) return;
    const addrs = publicDirect(node.getMultiaddrs());
    if (addrs.length === 0) return;
    void server.enable().then(() => {
      log.info({ addrs: addrs.map(String) }, "publicly reachable: relaying for members (members only, no limits)");
      provider = new DhtDiscovery({ node, keys: o.keys, service: MEMBER_RELAY_SERVICE, mode: "provide", what: "member relay", log });
      provider.start();
    });
  };
  node.addEventListener("self:peer:update", check);
  check();
  return () => {
    node.removeEventListener("self:peer:update", check);
    finder.stop();
    provider?.stop();
  };
}
