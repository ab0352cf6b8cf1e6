// Tells a burst of requests (a bulk `kubectl apply`: many in a short window) from isolated ones,
// for what holds back its own API writes until the burst is over: Events (lib/k8s/events.ts) and
// Entanglement reconciles (lib/controller/serialize.ts burstGate), issue 11.

export interface BurstOptions {
  /** this many requests within windowMs start a burst */
  count: number;
  windowMs: number;
  /** a burst is over once no request came for this long: a pause of the apply under load is not its end */
  quietMs: number;
  now?: () => number;
}

export class Burst {
  private recent: number[] = [];
  private last = -Infinity;
  private on = false;
  private readonly o: BurstOptions;
  private readonly now: () => number;

  constructor(o: BurstOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  arrived(): void {
    const now = this.now();
    this.last = now;
    this.recent = this.recent.filter((t) => now - t < this.o.windowMs);
    this.recent.push(now);
    if (this.recent.length >= this.o.count) this.on = true;
  }

  /** How long until the burst is over: 0 when there is none (any more). */
  remainingMs(): number {
    if (!this.on) return 0;
    const left = this.last + this.o.quietMs - this.now();
    if (left <= 0) this.on = false;
    return Math.max(0, left);
  }
}
