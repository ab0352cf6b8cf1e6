import { Burst, type BurstOptions } from "../k8s/burst.ts";

// One reconcile at a time per object: its CR events, its Deployment's and its Secret's watch
// events arrive together, and concurrent runs would each read the same old status and each
// write it (and announce it) again.
const tails = new Map<string, Promise<void>>();

export function serialize(key: string, run: () => Promise<void>): Promise<void> {
  const next = (tails.get(key) ?? Promise.resolve()).then(run, run);
  const tail = next.catch(() => undefined);
  tails.set(key, tail);
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return next;
}

// Runs not started yet, by key: see coalesce().
const waiting = new Map<string, Promise<void>>();

/**
 * Like serialize(), but a run asked for while another one for the same key waits to start
 * joins that one: each run reads the current state when it starts, so the second would only
 * repeat it. A burst of watch events for one object (its CR, Deployment, Pods, Secret) then
 * costs one reconcile, not one each.
 */
export function coalesce(key: string, run: () => Promise<void>, gate: Gate = (go) => go()): Promise<void> {
  const queued = waiting.get(key);
  if (queued) return queued;
  // still joinable while it waits at the gate (a pool's free slot)
  const next = serialize(key, () =>
    gate(() => {
      waiting.delete(key);
      return run();
    }),
  );
  waiting.set(key, next);
  return next;
}

/** Where a run waits before it starts: limiter()'s pool, or nothing. */
export type Gate = <T>(run: () => Promise<T>) => Promise<T>;

/**
 * At most `max` runs at a time; the others start in the order asked. Watch handlers that wait for
 * their reconcile handle one object at a time (Pepr and the API client await each event), so a
 * reconcile that mostly waits on a remote cluster goes to a bounded pool instead.
 */
export function limiter(max: number): Gate {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (run) => {
    if (active < max) active++;
    else await new Promise<void>((start) => waiting.push(start));
    try {
      return await run();
    } finally {
      // the slot goes straight to the next in line
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

/**
 * Holds runs while a burst of requests goes on (lib/k8s/burst.ts: a bulk `kubectl apply`):
 * `arrived()` marks a request (a new CR or spec), and during a burst runs wait at `gate` until it
 * is over, or at most `maxWaitMs` after they were asked for. Outside a burst a run starts at once.
 * The bulk apply then gets the API server to itself, and the reconciles (and the Deployments,
 * ReplicaSets and Pods they make) follow it (issue 11).
 */
export function burstGate(options: BurstOptions, maxWaitMs: number): { arrived(): void; gate: Gate } {
  const burst = new Burst(options);
  const now = options.now ?? Date.now;
  const held: { askedAt: number; go: () => void }[] = []; // in the order asked
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (timer || held.length === 0) return;
    const wait = Math.min(burst.remainingMs(), held[0].askedAt + maxWaitMs - now());
    timer = setTimeout(release, Math.max(0, wait));
    timer.unref?.();
  };
  const release = () => {
    timer = undefined;
    const over = burst.remainingMs() === 0;
    while (held.length > 0 && (over || now() - held[0].askedAt >= maxWaitMs)) held.shift()!.go();
    arm();
  };
  return {
    arrived: () => burst.arrived(),
    async gate(run) {
      if (burst.remainingMs() === 0) return run();
      await new Promise<void>((go) => {
        held.push({ askedAt: now(), go });
        arm();
      });
      return run();
    },
  };
}
