// Kubernetes Events on our objects, so `kubectl describe` tells users what happened.
//
// Events are written in the background, one at a time, as client-go's event recorder does. During
// a burst (many CRs applied at once) they wait until the burst is over, or at most
// MAX_DEFER_MS: each one is an API server write (about 4 ms of its CPU and 1.6 ms of etcd's here,
// issue 11), and a burst of 1,000 of them competed with the user's own `kubectl apply`.
import { hostname } from "node:os";
import { K8s, kind, Log } from "pepr";
import { Burst } from "./burst.ts";

interface ObjectRef {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string };
}

/** Events asked for within BURST_WINDOW_MS that make a burst. */
const BURST_EVENTS = 10;
const BURST_WINDOW_MS = 1000;
/** A burst is over once no event was asked for this long. */
const QUIET_MS = 1000;
/** No event waits longer than this (from when it was asked for) before it is sent. */
const MAX_DEFER_MS = 60_000;
/** Events beyond this many waiting are dropped (and counted), as client-go's recorder does. */
const MAX_QUEUED = 5000;

export interface EventQueueOptions {
  send: (event: kind.CoreEvent) => Promise<unknown>;
  now?: () => number;
  burstEvents?: number;
  burstWindowMs?: number;
  quietMs?: number;
  maxDeferMs?: number;
  maxQueued?: number;
}

/** Events to send, one at a time; held back while a burst of them is being asked for. */
export class EventQueue {
  private readonly queue: { event: kind.CoreEvent; at: number }[] = [];
  private readonly burst: Burst;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private idle: (() => void)[] = [];
  dropped = 0;
  sent = 0;
  private readonly o: Required<EventQueueOptions>;

  constructor(options: EventQueueOptions) {
    this.o = {
      now: Date.now,
      burstEvents: BURST_EVENTS,
      burstWindowMs: BURST_WINDOW_MS,
      quietMs: QUIET_MS,
      maxDeferMs: MAX_DEFER_MS,
      maxQueued: MAX_QUEUED,
      ...options,
    };
    this.burst = new Burst({ count: this.o.burstEvents, windowMs: this.o.burstWindowMs, quietMs: this.o.quietMs, now: this.o.now });
  }

  get waiting(): number {
    return this.queue.length;
  }

  push(event: kind.CoreEvent): void {
    const now = this.o.now();
    if (this.queue.length >= this.o.maxQueued) {
      if (this.dropped++ % 1000 === 0) Log.warn({ dropped: this.dropped }, "too many events waiting: dropping");
      return;
    }
    this.queue.push({ event, at: now });
    this.burst.arrived();
    this.kick();
  }

  /** Resolves once nothing waits (tests, shutdown). */
  drained(): Promise<void> {
    if (this.queue.length === 0 && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** How long the head of the queue must still wait (0: send now). */
  private holdFor(): number {
    const quiet = this.burst.remainingMs();
    if (quiet === 0 || this.queue.length === 0) return 0;
    return Math.max(0, Math.min(quiet, this.queue[0].at + this.o.maxDeferMs - this.o.now()));
  }

  private kick(): void {
    if (this.running || this.timer) return;
    const wait = this.holdFor();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, wait);
      this.timer.unref();
      return;
    }
    if (this.queue.length === 0) {
      for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    this.running = true;
    const { event } = this.queue.shift()!;
    this.o
      .send(event)
      .then(
        () => this.sent++,
        (err: Error) => Log.warn({ err: err?.message, reason: event.reason }, "could not record event"),
      )
      .finally(() => {
        this.running = false;
        this.kick();
      });
  }
}

const events = new EventQueue({ send: (event) => K8s(kind.CoreEvent).Create(event) });

/** Queues an Event about `obj` (best effort: never fails, never delays a reconcile). */
export async function emitEvent(obj: ObjectRef, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
  events.push(eventFor(obj, type, reason, message));
}

export function eventFor(obj: ObjectRef, type: "Normal" | "Warning", reason: string, message: string): kind.CoreEvent {
  const now = new Date().toISOString();
  const meta = obj.metadata ?? {};
  return {
    metadata: { generateName: `${meta.name ?? "entangle"}.`, namespace: meta.namespace ?? "default" },
    involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: meta.name, namespace: meta.namespace, uid: meta.uid },
    type,
    reason,
    message: message.slice(0, 1024),
    source: { component: "entangle" },
    reportingComponent: "entangle",
    reportingInstance: hostname(),
    firstTimestamp: now as unknown as Date,
    lastTimestamp: now as unknown as Date,
    count: 1,
  };
}
