// Who proved the token, and which services they provide. Providers are chosen by fewest
// active tunnel streams (round-robin among equals) and skipped for a while after a failure.
export interface Member {
  id: string;
  services: Set<string>;
  active: number;
  failedUntil: number;
}

const FAILURE_PENALTY_MS = 2_000;

export class Members {
  private readonly byId = new Map<string, Member>();
  private turn = 0;

  add(id: string, services: string[]): void {
    this.byId.set(id, { id, services: new Set(services), active: 0, failedUntil: 0 });
  }

  remove(id: string): boolean {
    return this.byId.delete(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Providers of a service tag, best first. */
  providers(tag: string, now = Date.now()): Member[] {
    const all = [...this.byId.values()].filter((m) => m.services.has(tag));
    const healthy = all.filter((m) => m.failedUntil <= now);
    const pool = healthy.length > 0 ? healthy : all;
    this.turn = (this.turn + 1) % Math.max(pool.length, 1);
    const rotated = [...pool.slice(this.turn), ...pool.slice(0, this.turn)];
    return rotated.sort((a, b) => a.active - b.active);
  }

  markFailed(id: string, now = Date.now()): void {
    const m = this.byId.get(id);
    if (m !== undefined) m.failedUntil = now + FAILURE_PENALTY_MS;
  }
}
