// Warm tunnel streams. Opening a libp2p stream costs a multistream-select round trip and a peer
// store write on each side before the tunnel's own tag/status round trip, so a new client used to
// wait for three round trips. The connect side keeps two negotiated streams per provider ready
// (the wire protocol is unchanged: the tag is simply sent later), so a client waits for one.
//
// The replacement of a stream just taken is opened on a later turn of the event loop: opening one
// runs ~0.3 ms of libp2p code at once (a new yamux stream, multistream-select; measured on this
// loaded host), which used to run before the taking client's tag was even written. While another
// stream is still ready it is opened later still (REFILL_DELAY_MS), so that its negotiation does
// not reach the provider while it dials the target for the client that took one.
import type { Stream } from "@libp2p/interface";

export interface Warm<C> {
  stream: Stream;
  /** the connection it was opened on */
  conn: C;
  openedAt: number;
}

export interface WarmStreamsOptions<C> {
  open(peer: string): Promise<Warm<C>>;
  /** still the connection a new tunnel to this peer should use (e.g. not relayed once direct) */
  current(peer: string, conn: C): boolean;
  /** streams per peer kept ready (2: a client arriving right after another still finds one) */
  size?: number;
  /** a ready stream is replaced after this long (the exposing side waits longer for its tag) */
  maxAgeMs?: number;
  now?: () => number;
  /**
   * runs the opening of replacements `ms` later and returns how to cancel that (default: a
   * timer; 0 = after this turn's writes left)
   */
  defer?: (fn: () => void, ms: number) => () => void;
}

export const WARM_MAX_AGE_MS = 30_000;
export const WARM_SIZE = 2;
/** how much later a taken stream is replaced while another one is still ready */
export const REFILL_DELAY_MS = 50;

export class WarmStreams<C> {
  private readonly ready = new Map<string, Array<Warm<C>>>();
  private readonly opening = new Map<string, number>();
  /** peers whose refill is scheduled (deferred) but not started yet */
  private readonly scheduled = new Map<string, { ms: number; cancel: () => void }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /**
   * each ready stream's expiry timer. A stream that leaves the pool (taken, discarded, dropped)
   * loses its timer at once: the timer's closure holds the stream, and through it the tunnel's
   * socket and pipe, which otherwise stayed reachable for WARM_MAX_AGE_MS after the tunnel ended
   * (~16 KB per new connection; a connect agent at 300 new connections a second held ~150 MB).
   */
  private readonly expiries = new Map<Warm<C>, NodeJS.Timeout>();
  private closed = false;

  private readonly o: WarmStreamsOptions<C>;

  constructor(options: WarmStreamsOptions<C>) {
    this.o = options;
  }

  /** A ready stream to the peer, if one is still usable; starts warming the next one either way. */
  take(peer: string): Warm<C> | undefined {
    const list = this.ready.get(peer) ?? [];
    let found: Warm<C> | undefined;
    while (found === undefined && list.length > 0) {
      const w = list.shift()!;
      this.unexpire(w);
      if (this.usable(peer, w)) found = w;
      else discard(w);
    }
    this.fillLater(peer, list.length > 0 ? REFILL_DELAY_MS : 0);
    return found;
  }

  /** Forget a peer (it disconnected): its ready streams are closed and not replaced. */
  drop(peer: string): void {
    for (const w of this.ready.get(peer) ?? []) {
      this.unexpire(w);
      discard(w);
    }
    this.ready.delete(peer);
    this.scheduled.get(peer)?.cancel();
    this.scheduled.delete(peer);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const peer of [...this.ready.keys()]) this.drop(peer);
  }

  private usable(peer: string, w: Warm<C>): boolean {
    const s = w.stream;
    return (
      s.status === "open" &&
      s.readStatus === "readable" &&
      s.writeStatus === "writable" &&
      this.now() - w.openedAt < this.maxAge() &&
      this.o.current(peer, w.conn)
    );
  }

  private fillLater(peer: string, ms: number): void {
    if (this.closed) return;
    const pending = this.scheduled.get(peer);
    if (pending !== undefined) {
      // already scheduled as soon or sooner; else sooner now (the last ready stream was taken)
      if (pending.ms <= ms) return;
      pending.cancel();
    }
    const entry = { ms, cancel: () => {} };
    this.scheduled.set(peer, entry);
    const run = () => {
      // dropped (the peer disconnected) or rescheduled meanwhile: not this one's to do
      if (this.scheduled.get(peer) !== entry) return;
      this.scheduled.delete(peer);
      if (!this.closed) this.fill(peer);
    };
    if (this.o.defer !== undefined) {
      entry.cancel = this.o.defer(run, ms);
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      run();
    }, ms);
    t.unref();
    this.timers.add(t);
    entry.cancel = () => {
      clearTimeout(t);
      this.timers.delete(t);
    };
  }

  private fill(peer: string): void {
    const want = (this.o.size ?? WARM_SIZE) - (this.ready.get(peer)?.length ?? 0) - (this.opening.get(peer) ?? 0);
    for (let i = 0; i < want && !this.closed; i++) {
      this.opening.set(peer, (this.opening.get(peer) ?? 0) + 1);
      this.o
        .open(peer)
        .then((w) => {
          if (this.closed) return discard(w);
          const list = this.ready.get(peer) ?? [];
          list.push(w);
          this.ready.set(peer, list);
          this.expireLater(peer, w);
        })
        // a peer that cannot be reached now is not retried here: the next client tries it anyway
        .catch(() => {})
        .finally(() => {
          const left = (this.opening.get(peer) ?? 1) - 1;
          if (left > 0) this.opening.set(peer, left);
          else this.opening.delete(peer);
        });
    }
  }

  /** Replace a stream nobody took before it ages out, so even rare clients find one ready. */
  private expireLater(peer: string, w: Warm<C>): void {
    const t = setTimeout(() => {
      this.expiries.delete(w);
      const list = this.ready.get(peer);
      const i = list?.indexOf(w) ?? -1;
      if (list === undefined || i < 0) return;
      list.splice(i, 1);
      const alive = w.stream.status === "open" && this.o.current(peer, w.conn);
      discard(w);
      if (alive) this.fill(peer);
    }, this.maxAge());
    t.unref();
    this.expiries.set(w, t);
  }

  private unexpire(w: Warm<C>): void {
    clearTimeout(this.expiries.get(w));
    this.expiries.delete(w);
  }

  private maxAge(): number {
    return this.o.maxAgeMs ?? WARM_MAX_AGE_MS;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }
}

function discard<C>(w: Warm<C>): void {
  // a clean close before any tag: the exposing side ends that stream without a target
  if (w.stream.status === "open") w.stream.close().catch(() => w.stream.abort(new Error("warm stream discarded")));
}
