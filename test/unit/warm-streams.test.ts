import { afterEach, describe, expect, it, vi } from "vitest";
import type { Stream } from "@libp2p/interface";
import { REFILL_DELAY_MS, WarmStreams, type Warm } from "../../lib/p2p/warm-streams.ts";

interface FakeStream {
  status: string;
  readStatus: string;
  writeStatus: string;
  close: ReturnType<typeof vi.fn>;
  abort: ReturnType<typeof vi.fn>;
}

function fakeStream(): FakeStream {
  const s: FakeStream = {
    status: "open",
    readStatus: "readable",
    writeStatus: "writable",
    close: vi.fn(async () => {
      s.status = "closed";
    }),
    abort: vi.fn(),
  };
  return s;
}

/**
 * A pool over fake streams on connection "c1" (or whatever `conn` says now); one stream per peer
 * and replacements opened at once unless `size` / `realDefer` say otherwise.
 */
function pool(opts: { now?: () => number; maxAgeMs?: number; fail?: boolean; size?: number; realDefer?: boolean } = {}) {
  const opened: FakeStream[] = [];
  let conn = "c1";
  const open = vi.fn(async (): Promise<Warm<string>> => {
    if (opts.fail) throw new Error("unreachable");
    const s = fakeStream();
    opened.push(s);
    return { stream: s as unknown as Stream, conn, openedAt: (opts.now ?? Date.now)() };
  });
  const warm = new WarmStreams<string>({
    open,
    current: (_peer, c) => c === conn,
    now: opts.now,
    maxAgeMs: opts.maxAgeMs,
    size: "size" in opts ? opts.size : 1,
    defer: opts.realDefer ? undefined : (fn) => (fn(), () => {}),
  });
  return { warm, open, opened, useConn: (c: string) => (conn = c) };
}

const settle = () => new Promise((r) => setImmediate(r));

afterEach(() => vi.useRealTimers());

describe("warm tunnel streams", () => {
  it("has nothing ready at first, then hands out the stream it warmed and warms the next", async () => {
    const { warm, open, opened } = pool();
    expect(warm.take("p")).toBeUndefined();
    expect(open).toHaveBeenCalledTimes(1);
    await settle();
    const w = warm.take("p");
    expect(w?.stream).toBe(opened[0]);
    expect(open).toHaveBeenCalledTimes(2);
    await settle();
    expect(warm.take("p")?.stream).toBe(opened[1]);
  });

  it("keeps one per peer, not one per take while one is still opening", async () => {
    const { warm, open } = pool();
    warm.take("p");
    warm.take("p");
    warm.take("p");
    expect(open).toHaveBeenCalledTimes(1);
    warm.take("q");
    expect(open).toHaveBeenCalledTimes(2);
  });

  it("never hands out a stream that was closed, reset, aged out or is on a connection no longer preferred", async () => {
    let now = 1_000;
    const { warm, opened, useConn } = pool({ now: () => now, maxAgeMs: 500 });
    warm.take("p");
    await settle();
    opened[0].readStatus = "closed"; // the provider closed it (e.g. restarted)
    expect(warm.take("p")).toBeUndefined();
    await settle();
    opened[1].status = "reset";
    expect(warm.take("p")).toBeUndefined();
    await settle();
    now += 500; // aged out
    expect(warm.take("p")).toBeUndefined();
    expect(opened[2].close).toHaveBeenCalled();
    await settle();
    useConn("c2"); // a direct connection appeared: the relayed stream is not used
    expect(warm.take("p")).toBeUndefined();
    expect(opened[3].close).toHaveBeenCalled();
    await settle();
    expect(warm.take("p")?.stream).toBe(opened[4]);
  });

  it("does not retry an unreachable peer on its own", async () => {
    const { warm, open } = pool({ fail: true });
    expect(warm.take("p")).toBeUndefined();
    await settle();
    await settle();
    expect(open).toHaveBeenCalledTimes(1);
    expect(warm.take("p")).toBeUndefined();
    expect(open).toHaveBeenCalledTimes(2);
  });

  it("replaces a stream nobody took before it ages out", async () => {
    vi.useFakeTimers();
    const { warm, open, opened } = pool({ maxAgeMs: 1_000 });
    warm.take("p");
    await vi.advanceTimersByTimeAsync(0);
    expect(open).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(opened[0].close).toHaveBeenCalled();
    expect(open).toHaveBeenCalledTimes(2);
    expect(warm.take("p")?.stream).toBe(opened[1]);
  });

  it("holds no timer for a stream once it left the pool (its tunnel's socket and pipe stay collectable)", async () => {
    vi.useFakeTimers();
    const { warm, opened } = pool({ size: 2 });
    warm.take("p");
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(2); // each ready stream's expiry
    const taken = warm.take("p");
    expect(taken?.stream).toBe(opened[0]);
    await vi.advanceTimersByTimeAsync(0);
    // the one left and its replacement; none for the stream taken
    expect(vi.getTimerCount()).toBe(2);
    warm.drop("p");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("closes what is ready when a peer is dropped or the pool closes, and warms nothing after close", async () => {
    const { warm, open, opened } = pool();
    warm.take("p");
    warm.take("q");
    await settle();
    warm.drop("p");
    expect(opened[0].close).toHaveBeenCalled();
    warm.close();
    expect(opened[1].close).toHaveBeenCalled();
    expect(warm.take("q")).toBeUndefined();
    expect(open).toHaveBeenCalledTimes(2);
  });

  it("opens the replacement of a taken stream only after the taker's turn, so its tag leaves first", async () => {
    const { warm, open, opened } = pool({ realDefer: true });
    expect(warm.take("p")).toBeUndefined();
    expect(open).not.toHaveBeenCalled();
    await new Promise((r) => setTimeout(r, 5));
    expect(open).toHaveBeenCalledTimes(1);
    const w = warm.take("p");
    expect(w?.stream).toBe(opened[0]);
    warm.take("p");
    expect(open).toHaveBeenCalledTimes(1); // one refill scheduled per peer, not one per take
    await new Promise((r) => setTimeout(r, 5));
    expect(open).toHaveBeenCalledTimes(2);
  });

  it("does not refill a peer dropped before its deferred refill ran", async () => {
    const { warm, open } = pool({ realDefer: true });
    warm.take("p");
    warm.drop("p");
    warm.take("q");
    await new Promise((r) => setTimeout(r, 5));
    expect(open.mock.calls).toEqual([["q"]]);
    warm.take("r");
    warm.close();
    await new Promise((r) => setTimeout(r, 5));
    expect(open).toHaveBeenCalledTimes(1); // nothing after close either
  });

  it("keeps two streams per peer ready by default", async () => {
    const { warm, open, opened } = pool({ size: undefined });
    warm.take("p");
    expect(open).toHaveBeenCalledTimes(2);
    await settle();
    expect(warm.take("p")?.stream).toBe(opened[0]);
    expect(warm.take("p")?.stream).toBe(opened[1]);
  });

  it("replaces a taken stream later while another is still ready, at once when none is left", async () => {
    const { warm, open, opened } = pool({ realDefer: true, size: 2 });
    warm.take("p");
    await new Promise((r) => setTimeout(r, 5));
    expect(open).toHaveBeenCalledTimes(2);
    expect(warm.take("p")?.stream).toBe(opened[0]);
    await new Promise((r) => setTimeout(r, 5));
    // one is still ready: its replacement waits (not to meet the provider dialing the target)
    expect(open).toHaveBeenCalledTimes(2);
    expect(warm.take("p")?.stream).toBe(opened[1]);
    await new Promise((r) => setTimeout(r, 5));
    // none left: now, not REFILL_DELAY_MS later
    expect(open).toHaveBeenCalledTimes(4);
    await new Promise((r) => setTimeout(r, REFILL_DELAY_MS + 20));
    expect(open).toHaveBeenCalledTimes(4);
    warm.close();
  });
});
