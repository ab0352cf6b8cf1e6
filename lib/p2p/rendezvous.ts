// Rendezvous on relays: members register under a namespace derived from the token
// (HMAC, opaque to the relay) and learn each other's peer ids and direct addresses. The relay
// never sees service names, and it need not hold the token. Service names are exchanged only
// between members, inside the authenticated channel (see membership.ts).
import type { Connection, Stream } from "@libp2p/interface";
import { jsonChannel, WireError } from "./wire.ts";
import { sourceKey } from "./gater.ts";

export const RENDEZVOUS_PROTOCOL = "/entangle/rendezvous/1.0.0";
const TTL_MS = 30_000;
const MAX_PER_NAMESPACE = 1024;
const MAX_NAMESPACES = 4096;
const MAX_ADDRS = 16;

export interface Registration {
  id: string;
  addrs: string[];
}

interface Request {
  ns?: unknown;
  addrs?: unknown;
}

/**
 * Anyone reaching a relay may register, so what one party can hold is bounded: a member uses
 * one namespace, so a peer id gets a few and a source address (where new peer ids cost nothing)
 * a few dozen; registrations expire after TTL_MS unless refreshed.
 */
export const RENDEZVOUS_LIMITS = { namespacesPerPeer: 4, namespacesPerSource: 64 };
const SWEEP_EVERY_MS = 1_000;

interface Entry {
  addrs: string[];
  expires: number;
  source: string;
}

/** Relay side: an in-memory table with expiry. */
export class RendezvousTable {
  private readonly table = new Map<string, Map<string, Entry>>();
  private readonly perPeer = new Map<string, number>();
  private readonly perSource = new Map<string, number>();
  private lastSweep = -Infinity;

  register(ns: string, id: string, addrs: string[], now = Date.now(), source = id): Registration[] {
    // a sweep per request would cost O(table) each: at most once a second
    if (now - this.lastSweep >= SWEEP_EVERY_MS) this.expire(now);
    let entries = this.table.get(ns);
    const existing = entries?.get(id);
    if (existing !== undefined && existing.expires < now) {
      this.forget(ns, id, existing);
      entries = this.table.get(ns);
    }
    if (entries?.has(id) !== true) {
      if ((this.perPeer.get(id) ?? 0) >= RENDEZVOUS_LIMITS.namespacesPerPeer) throw new Error("rendezvous: too many namespaces for this peer");
      if ((this.perSource.get(source) ?? 0) >= RENDEZVOUS_LIMITS.namespacesPerSource) throw new Error("rendezvous: too many namespaces for this address");
      if (entries === undefined && this.table.size >= MAX_NAMESPACES) throw new Error("rendezvous table full");
      if (entries !== undefined && entries.size >= MAX_PER_NAMESPACE) throw new Error("rendezvous namespace full");
      count(this.perPeer, id, 1);
      count(this.perSource, source, 1);
    }
    if (entries === undefined) {
      entries = new Map();
      this.table.set(ns, entries);
    }
    const held = entries.get(id);
    if (held !== undefined && held.source !== source) {
      // the same peer from a new address: its share moves with it
      count(this.perSource, held.source, -1);
      count(this.perSource, source, 1);
    }
    entries.set(id, { addrs: addrs.slice(0, MAX_ADDRS), expires: now + TTL_MS, source });
    return [...entries].filter(([other, e]) => other !== id && e.expires >= now).map(([other, e]) => ({ id: other, addrs: e.addrs }));
  }

  private forget(ns: string, id: string, e: Entry): void {
    const entries = this.table.get(ns)!;
    entries.delete(id);
    if (entries.size === 0) this.table.delete(ns);
    count(this.perPeer, id, -1);
    count(this.perSource, e.source, -1);
  }

  private expire(now: number): void {
    this.lastSweep = now;
    for (const [ns, entries] of this.table) for (const [id, e] of entries) if (e.expires < now) this.forget(ns, id, e);
  }
}

function count(map: Map<string, number>, key: string, delta: number): void {
  const n = (map.get(key) ?? 0) + delta;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

/**
 * Serves one request. A request that breaks the protocol (a malformed frame, no valid namespace)
 * is passed to `onMalformed`: the relay cuts such a peer off. Limits and stream ends are not.
 */
export async function serveRendezvous(table: RendezvousTable, stream: Stream, conn: Connection, onMalformed?: (err: Error) => void): Promise<void> {
  const signal = AbortSignal.timeout(10_000);
  const ch = jsonChannel(stream, signal);
  try {
    const req = await ch.recv<Request>();
    if (typeof req.ns !== "string" || !/^[0-9a-f]{64}$/.test(req.ns)) throw new WireError("bad namespace");
    const addrs = Array.isArray(req.addrs) ? req.addrs.filter((a): a is string => typeof a === "string" && a.length < 512) : [];
    const ip = conn.remoteAddr.getComponents().find((c) => c.name === "ip4" || c.name === "ip6")?.value;
    const peers = table.register(req.ns, conn.remotePeer.toString(), addrs, Date.now(), ip === undefined ? undefined : sourceKey(ip));
    await ch.send({ peers });
    await stream.close();
  } catch (err) {
    stream.abort(err as Error);
    if (err instanceof WireError) onMalformed?.(err);
  }
}

export async function registerAndDiscover(conn: Connection, ns: string, addrs: string[]): Promise<Registration[]> {
  const signal = AbortSignal.timeout(10_000);
  const stream = await conn.newStream(RENDEZVOUS_PROTOCOL, { signal, runOnLimitedConnection: true });
  try {
    const ch = jsonChannel(stream, signal);
    await ch.send({ ns, addrs });
    const res = await ch.recv<{ peers?: Registration[] }>();
    await stream.close().catch(() => {});
    return Array.isArray(res.peers) ? res.peers.filter((p) => typeof p?.id === "string" && Array.isArray(p.addrs)) : [];
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}
