// Who may use this agent: every connection we dial proves membership at once; an inbound
// connection that proves nothing within AUTH_DEADLINE_MS is closed; a peer that fails a proof is
// refused and logged once. Admitted peers land in `members` with the services they provide.
import type { Libp2p } from "libp2p";
import type { Connection, Stream } from "@libp2p/interface";
import { MembershipError, proveAsInitiator, proveAsResponder, type Hello } from "./membership.ts";
import { Members } from "./members.ts";
import { pathOf, type Metrics } from "./metrics.ts";
import type { Logger } from "./log.ts";

/**
 * An inbound connection whose peer has not proved membership by then is closed: past Noise,
 * a stranger otherwise holds it until the 5-minute inactivity timeout. Members start their
 * proof as soon as they connect (ms on a LAN); a proof under way gets its own 10 s to finish.
 */
export const AUTH_DEADLINE_MS = 10_000;

export interface GateOptions {
  node: Libp2p;
  authKey: Buffer;
  hello: Hello;
  /** our own service tag, to log whether an admitted peer provides it */
  tag: string;
  metrics: Metrics;
  log: Logger;
  /** a peer of another network: its configured dial target backs off */
  onRefused(peer: string): void;
  /** how a peer was found (discovery.ts FoundVia), for the log */
  foundVia?(peer: string): string;
}

export class MemberGate {
  readonly members = new Members();
  private readonly pending = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly o: GateOptions;

  constructor(o: GateOptions) {
    this.o = o;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Resolves when a proof under way for this peer has ended (at once when none is). */
  async settled(peer: string): Promise<void> {
    await this.pending.get(peer);
  }

  /**
   * Whether `peer` is a member, waiting up to `ms` for a proof under way or about to start (a
   * member proves itself as soon as it connects; its relay request may arrive first).
   */
  async admitted(peer: string, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      await this.pending.get(peer);
      if (this.members.has(peer)) return true;
      if (this.stopped || Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A connection we dialed: prove membership on it, unless the peer is known or being proved. */
  initiate(conn: Connection): void {
    const peer = conn.remotePeer.toString();
    if (this.members.has(peer) || this.pending.has(peer)) return;
    this.o.log.debug({ peer, addr: conn.remoteAddr.toString() }, "proving membership");
    const run = proveAsInitiator(conn, this.o.node.peerId.toString(), this.o.authKey, this.o.hello)
      .then(
        (hello) => this.admit(peer, hello, conn),
        (err: Error) => {
          // a peer that does not speak our membership protocol is a relay or a stranger: not an error
          if (err.name === "UnsupportedProtocolError") this.o.log.debug({ peer }, "peer does not speak the membership protocol (a relay?)");
          else this.refuse(conn, err);
        },
      )
      .finally(() => this.pending.delete(peer));
    this.pending.set(peer, run);
  }

  /**
   * Members only: a relay serves peers it cannot authenticate (it holds no token), so relay
   * mode has no gate; members reach each other through it over connections they dial.
   */
  require(conn: Connection): void {
    const timer = setTimeout(() => void this.closeIfStranger(conn), AUTH_DEADLINE_MS);
    timer.unref();
  }

  /** The membership protocol's handler: the peer that dialed us proves itself. */
  async respond(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    const run = proveAsResponder(stream, conn, this.o.node.peerId.toString(), this.o.authKey, this.o.hello).then(
      (hello) => this.admit(peer, hello, conn),
      (err: Error) => this.refuse(conn, err),
    );
    this.pending.set(peer, run);
    await run.finally(() => this.pending.delete(peer));
  }

  /** The peer went away: returns whether it was a member. */
  forget(peer: string): boolean {
    const was = this.members.remove(peer);
    if (was) this.o.metrics.members.set(this.members.size);
    return was;
  }

  private async closeIfStranger(conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString();
    // membership is per peer: another connection (a simultaneous dial) may have proved it
    await this.pending.get(peer);
    if (this.stopped || conn.status !== "open" || this.members.has(peer)) return;
    this.o.metrics.authFailures.inc();
    this.o.log.info({ peer, addr: conn.remoteAddr.toString() }, `closing inbound connection: no membership proof within ${AUTH_DEADLINE_MS / 1000} s`);
    // a graceful close waits for the stranger's streams: bounded, then cut
    await conn.close({ signal: AbortSignal.timeout(2_000) }).catch(() => conn.abort(new Error("no membership proof")));
  }

  private admit(peer: string, hello: Hello, conn: Connection): void {
    this.members.add(peer, hello.services);
    this.o.metrics.members.set(this.members.size);
    this.o.log.info(
      {
        peer,
        provides: hello.services.includes(this.o.tag),
        found: this.o.foundVia?.(peer),
        path: pathOf(conn),
        addr: conn.remoteAddr.toString(),
        encryption: conn.encryption,
      },
      "member authenticated",
    );
  }

  private refuse(conn: Connection, err: Error): void {
    const peer = conn.remotePeer.toString();
    if (err instanceof MembershipError) {
      this.o.metrics.authFailures.inc();
      this.o.log.warn({ peer, addr: conn.remoteAddr.toString(), reason: err.message }, "peer refused: not a member of this network (different token?)");
      this.o.onRefused(peer);
      void conn.close().catch(() => {});
    } else {
      this.o.log.debug({ peer, err: err.message }, "membership exchange failed");
    }
  }
}

/** Closes a connection whose peer broke a protocol, logging it once per connection. */
export type ConnectionCutter = (conn: Connection, msg: string, reason?: string) => void;

export function connectionCutter(log: Logger): ConnectionCutter {
  const cut = new WeakSet<Connection>();
  return (conn, msg, reason) => {
    if (cut.has(conn)) return;
    cut.add(conn);
    log.warn({ peer: conn.remotePeer.toString(), addr: conn.remoteAddr.toString(), ...(reason !== undefined ? { reason } : {}) }, msg);
    void conn.close({ signal: AbortSignal.timeout(2_000) }).catch(() => conn.abort(new Error(msg)));
  };
}
