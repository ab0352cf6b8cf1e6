// Rendezvous on relays: members register under a namespace derived from the token
// (HMAC, opaque to the relay) and learn each other's peer ids and direct addresses. The relay
// never sees service names, and it need not hold the token. Service names are exchanged only
// between members, inside the authenticated channel (see membership.ts).
import type { Connection, Stream } from "@libp2p/interface";
import { jsonChannel } from "./wire.ts";

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

/** Relay side: an in-memory table with expiry. */
export class RendezvousTable {
  private readonly table = new Map<string, Map<string, { addrs: string[]; expires: number }>>();

  register(ns: string, id: string, addrs: string[], now = Date.now()): Registration[] {
    this.expire(now);
    let entries = this.table.get(ns);
    if (entries === undefined) {
      if (this.table.size >= MAX_NAMESPACES) throw new Error("rendezvous table full");
      entries = new Map();
      this.table.set(ns, entries);
    }
    if (!entries.has(id) && entries.size >= MAX_PER_NAMESPACE) throw new Error("rendezvous namespace full");
    entries.set(id, { addrs: addrs.slice(0, MAX_ADDRS), expires: now + TTL_MS });
    return [...entries].filter(([other]) => other !== id).map(([other, e]) => ({ id: other, addrs: e.addrs }));
  }

  private expire(now: number): void {
    for (const [ns, entries] of this.table) {
      for (const [id, e] of entries) if (e.expires < now) entries.delete(id);
      if (entries.size === 0) this.table.delete(ns);
    }
  }
}

export async function serveRendezvous(table: RendezvousTable, stream: Stream, conn: Connection): Promise<void> {
  const signal = AbortSignal.timeout(10_000);
  const ch = jsonChannel(stream, signal);
  try {
    const req = await ch.recv<Request>();
    if (typeof req.ns !== "string" || !/^[0-9a-f]{64}$/.test(req.ns)) throw new Error("bad namespace");
    const addrs = Array.isArray(req.addrs) ? req.addrs.filter((a): a is string => typeof a === "string" && a.length < 512) : [];
    const peers = table.register(req.ns, conn.remotePeer.toString(), addrs);
    await ch.send({ peers });
    await stream.close();
  } catch (err) {
    stream.abort(err as Error);
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
