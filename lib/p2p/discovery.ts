// How an agent finds other members: it keeps dialing its configured peers (with backoff), and
// on every relay it is connected to it registers under the network's rendezvous namespace and
// dials whoever else registered there. mDNS discoveries (when enabled) are dialed too.
import { createHmac } from "node:crypto";
import type { Libp2p } from "libp2p";
import type { PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { RENDEZVOUS_PROTOCOL, registerAndDiscover } from "./rendezvous.ts";
import type { Metrics } from "./metrics.ts";
import type { Logger } from "./log.ts";

/** How a member was found: a configured peer (--peer, ENTANGLE_PEERS), a peer embedded in the token,
 * a DHT bootstrap node, a DHT provider record (of a service, or of a member relay), a relay's
 * rendezvous, mDNS (under our network's tag); or it dialed us. Nothing else is dialed: the DHT's
 * other peers (libp2p's peer:discovery) are strangers. */
export type FoundVia = "configured" | "token" | "bootstrap" | "dht" | "rendezvous" | "mdns" | "dialed us";

export interface DiscoveryOptions {
  node: Libp2p;
  /** peers dialed and redialed, each with where it came from */
  peers: Array<{ addr: Multiaddr; via: FoundVia }>;
  /** the token's rendezvous key; without it (relay mode) only configured peers are dialed */
  rendezvousKey?: Buffer;
  /** reachable only through relays: no direct addresses are registered */
  noDirect: boolean;
  /** peers already admitted need no rendezvous through their connection */
  isMember(peer: string): boolean;
  metrics: Metrics;
  log: Logger;
}

interface DialTarget {
  addr: Multiaddr;
  via: FoundVia;
  peer?: string;
  nextAttempt: number;
  backoff: number;
}

/** A per-network tag keeps other networks' agents out of our mDNS answers. */
export function mdnsServiceTag(fingerprint: string | undefined): string {
  return `_entangle-${(fingerprint ?? "relay").slice(0, 12)}._udp.local`;
}

export class Discovery {
  private readonly targets: DialTarget[];
  private running = false;
  private readonly o: DiscoveryOptions;
  /** the first way each peer we dialed was found (bounded: oldest forgotten first) */
  private readonly found = new Map<string, FoundVia>();

  constructor(o: DiscoveryOptions) {
    this.o = o;
    this.targets = o.peers.map(({ addr, via }) => ({
      addr,
      via,
      peer: addr.getComponents().find((c) => c.name === "p2p")?.value,
      nextAttempt: 0,
      backoff: 500,
    }));
  }

  /** How `peer` was found, if we dialed it; undefined for a peer that dialed us. */
  foundVia(peer: string): FoundVia | undefined {
    return this.found.get(peer);
  }

  private remember(peer: string, via: FoundVia): void {
    if (this.found.has(peer)) return;
    if (this.found.size >= 4096) this.found.delete(this.found.keys().next().value!);
    this.found.set(peer, via);
  }

  /** Periodic: redial configured peers, refresh rendezvous on relays. Never overlaps itself. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await Promise.all([this.redialConfigured(), this.o.rendezvousKey !== undefined ? this.rendezvous(this.o.rendezvousKey) : undefined]);
    } catch (err) {
      this.o.log.debug({ err }, "tick failed");
    } finally {
      this.running = false;
    }
  }

  /** Don't hammer a peer of another network; a fixed peer restarts with a new identity anyway. */
  backOff(peer: string, ms: number): void {
    for (const t of this.targets) if (t.peer === peer) t.nextAttempt = Date.now() + ms;
  }

  dial(peer: PeerId, via: FoundVia): void {
    this.remember(peer.toString(), via);
    this.o.log.debug({ peer: peer.toString(), via }, "dialing a peer found");
    this.o.node.dial(peer, { signal: AbortSignal.timeout(10_000) }).then(
      () => this.o.metrics.dials.labels("ok").inc(),
      (err: Error) => {
        this.o.metrics.dials.labels("failed").inc();
        this.o.log.debug({ peer: peer.toString(), via, err: err.message }, "dial failed");
      },
    );
  }

  private async redialConfigured(): Promise<void> {
    const { node, metrics, log } = this.o;
    const now = Date.now();
    await Promise.all(
      this.targets.map(async (t) => {
        if (t.peer !== undefined && node.getConnections(peerIdFromString(t.peer)).length > 0) return;
        if (t.nextAttempt > now) return;
        try {
          const conn = await node.dial(t.addr, { signal: AbortSignal.timeout(5_000) });
          t.peer = conn.remotePeer.toString();
          t.backoff = 500;
          this.remember(t.peer, t.via);
          metrics.dials.labels("ok").inc();
          log.debug({ addr: t.addr.toString(), peer: t.peer }, "connected to peer");
        } catch (err) {
          metrics.dials.labels("failed").inc();
          t.nextAttempt = Date.now() + t.backoff;
          // stay under ~4 s between attempts so a restarted peer is found again quickly
          t.backoff = Math.min(t.backoff * 2, 4_000);
          log.debug({ addr: t.addr.toString(), err: (err as Error).message }, "dial failed");
        }
      }),
    );
  }

  private async rendezvous(key: Buffer): Promise<void> {
    const { node } = this.o;
    const ns = createHmac("sha256", key).update("members").digest("hex");
    const own = this.o.noDirect
      ? []
      : node
          .getMultiaddrs()
          .filter((a) => !a.toString().includes("/p2p-circuit"))
          .map(String);
    for (const conn of node.getConnections()) {
      if (conn.status !== "open" || conn.limits !== undefined) continue;
      const id = conn.remotePeer;
      if (this.o.isMember(id.toString())) continue;
      const protocols = await node.peerStore.get(id).then(
        (p) => p.protocols,
        () => [] as string[],
      );
      if (!protocols.includes(RENDEZVOUS_PROTOCOL)) continue;
      try {
        const found = await registerAndDiscover(conn, ns, own);
        for (const reg of found) {
          const peer = peerIdFromString(reg.id);
          if (peer.equals(node.peerId) || node.getConnections(peer).length > 0) continue;
          const circuit = multiaddr(`${conn.remoteAddr.toString().split("/p2p/")[0]}/p2p/${id}/p2p-circuit`);
          const addrs = [...reg.addrs.flatMap((a) => safeMultiaddr(a)), circuit];
          await node.peerStore.merge(peer, { multiaddrs: addrs });
          this.dial(peer, "rendezvous");
        }
      } catch (err) {
        this.o.log.debug({ relay: id.toString(), err: (err as Error).message }, "rendezvous failed");
      }
    }
  }
}

function safeMultiaddr(a: string): Multiaddr[] {
  try {
    return [multiaddr(a)];
  } catch {
    return [];
  }
}
