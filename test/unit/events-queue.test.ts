// lib/k8s/events.ts: Events go out one at a time; a burst of them waits until it is over (or
// at most maxDeferMs), so they do not compete with the burst's own API writes (issue 11).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EventQueue, eventFor } from "../../lib/k8s/events.ts";

const ev = (i: number) => eventFor({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: `o${i}`, namespace: "ns" } }, "Normal", "R", `m${i}`);

describe("EventQueue", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function queue(extra: Partial<ConstructorParameters<typeof EventQueue>[0]> = {}) {
    const sent: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const q = new EventQueue({
      now: () => Date.now(),
      burstEvents: 5,
      burstWindowMs: 1000,
      quietMs: 1000,
      maxDeferMs: 10_000,
      send: async (e) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 10));
        sent.push(e.message!);
        inFlight--;
      },
      ...extra,
    });
    return { q, sent, maxInFlight: () => maxInFlight };
  }

  it("sends a lone event at once", async () => {
    const { q, sent } = queue();
    q.push(ev(1));
    await vi.advanceTimersByTimeAsync(20);
    expect(sent).toEqual(["m1"]);
  });

  it("holds a burst until it is quiet, then sends all in order, one at a time", async () => {
    const { q, sent, maxInFlight } = queue();
    for (let i = 0; i < 20; i++) {
      q.push(ev(i));
      await vi.advanceTimersByTimeAsync(100); // 10 a second: a burst
    }
    // the first few went before the burst was seen; the rest wait
    const early = sent.length;
    expect(early).toBeLessThan(5);
    await vi.advanceTimersByTimeAsync(900);
    expect(sent.length).toBe(early);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(maxInFlight()).toBe(1);
    await q.drained();
  });

  it("never holds an event longer than maxDeferMs, even while the burst goes on", async () => {
    const { q, sent } = queue();
    for (let t = 0; t < 150; t++) {
      q.push(ev(t));
      await vi.advanceTimersByTimeAsync(100);
    }
    // 15 s of a burst: what was asked for more than 10 s ago has gone out
    expect(sent.length).toBeGreaterThanOrEqual(40);
    expect(sent[0]).toBe("m0");
  });

  it("drops what is beyond maxQueued", async () => {
    const { q } = queue({ maxQueued: 10 });
    for (let i = 0; i < 30; i++) q.push(ev(i));
    expect(q.waiting).toBeLessThanOrEqual(10);
    expect(q.dropped).toBeGreaterThan(0);
  });
});
