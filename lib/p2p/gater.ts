// Bounds what strangers can hold on a p2p port before they have even finished the encryption
// handshake. libp2p counts such pending connections only globally (maxIncomingPendingConnections)
// and frees a slot only at the upgrade timeout, so one source holding idle connections kept
// members out (2,000 idle connections from one address: a new member waited > 20 s). Here each
// source address (an IPv6 /64 counts as one) may hold a few; the rest are refused at once.
import type { ConnectionGater, MultiaddrConnection } from "@libp2p/interface";
import { isIP } from "node:net";

/** Pending (not yet encrypted) inbound connections per source; a member needs one, briefly. */
export const PENDING_PER_SOURCE = 8;

/** The unit an attacker cannot cheaply multiply: an IPv4 address, an IPv6 /64. */
export function sourceKey(host: string): string {
  if (isIP(host) !== 6) return host;
  const [head, tail = ""] = host.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const full = host.includes("::") ? [...left, ...Array(8 - left.length - right.length).fill("0"), ...right] : left;
  return full
    .slice(0, 4)
    .map((h) => h.toLowerCase().replace(/^0+(?=.)/, ""))
    .join(":");
}

export class PendingBySource {
  private readonly counts = new Map<string, number>();
  private readonly limit: number;

  constructor(limit = PENDING_PER_SOURCE) {
    this.limit = limit;
  }

  /** Takes a slot for `key`; false when it holds `limit` already. */
  take(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.limit) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = (this.counts.get(key) ?? 1) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }

  get sources(): number {
    return this.counts.size;
  }
}

function remoteHost(maConn: MultiaddrConnection): string | undefined {
  const ip = maConn.remoteAddr.getComponents().find((c) => c.name === "ip4" || c.name === "ip6");
  return ip?.value;
}

/**
 * A connection gater taking a per-source slot when a raw inbound connection arrives and
 * giving it back once the connection is encrypted or closed, whichever comes first. `more`:
 * further hooks (a member relay's, member-relay.ts).
 */
export function pendingGater(pending = new PendingBySource(), more: ConnectionGater = {}): ConnectionGater {
  const releases = new WeakMap<MultiaddrConnection, () => void>();
  return {
    ...more,
    denyInboundConnection(maConn) {
      const host = remoteHost(maConn);
      if (host === undefined) return false; // relayed: the relay's own connection was counted
      const key = sourceKey(host);
      if (!pending.take(key)) return true;
      let held = true;
      const release = () => {
        if (held) pending.release(key);
        held = false;
      };
      releases.set(maConn, release);
      maConn.addEventListener("close", release, { once: true });
      return false;
    },
    denyInboundEncryptedConnection(_peer, maConn) {
      releases.get(maConn)?.();
      return false;
    },
  };
}
