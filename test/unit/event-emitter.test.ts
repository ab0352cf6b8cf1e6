// libp2p's event targets (main-event's TypedEventEmitter: every stream, muxer, connection and the
// node itself) keep and call their listeners themselves (patches/main-event+*.patch): Node's
// EventTarget cost each agent ~100 µs of CPU per new tunnelled TCP connection (a Listener object
// per listener, a wrapper and an options object per add, megamorphic symbol-keyed loads on every
// dispatch). The first test fails on the unpatched package; the others pin down what callers see,
// which holds with and without the patch.
import { afterEach, describe, expect, it, vi } from "vitest";
import { TypedEventEmitter } from "main-event";
import { yamuxPair } from "../helpers/streams.ts";

type Events = Record<string, Event>;
const tick = () => new Promise((r) => process.nextTick(r));

afterEach(() => vi.restoreAllMocks());

describe("libp2p's event targets", () => {
  it("register nothing with Node's EventTarget, on a stream's whole life", async () => {
    const native = vi.spyOn(EventTarget.prototype, "addEventListener");
    const nativeDispatch = vi.spyOn(EventTarget.prototype, "dispatchEvent");
    const muxers = yamuxPair();
    const { outbound, inbound } = await muxers.pair();
    const got = new Promise<string>((resolve) =>
      inbound.addEventListener("message", (evt) => resolve(new TextDecoder().decode(evt.data.subarray())), { once: true }),
    );
    outbound.send(new TextEncoder().encode("hello"));
    expect(await got).toBe("hello");
    await Promise.all([outbound.close(), inbound.close()]);
    await muxers.close();
    // unpatched: every listener of the streams and muxers went to the native EventTarget, and
    // every event through its dispatch
    // (AbortSignals are Node's own EventTargets: not libp2p's)
    expect(native.mock.contexts.filter((target) => target instanceof TypedEventEmitter)).toHaveLength(0);
    expect(nativeDispatch.mock.contexts.filter((target) => target instanceof TypedEventEmitter)).toHaveLength(0);
  });

  it("are still EventTargets", () => {
    expect(new TypedEventEmitter()).toBeInstanceOf(EventTarget);
  });

  it("call listeners in the order added, each once per dispatch; adding one twice is a no-op", () => {
    const t = new TypedEventEmitter<Events>();
    const calls: string[] = [];
    const a = () => calls.push("a");
    t.addEventListener("x", a);
    t.addEventListener("x", () => calls.push("b"));
    t.addEventListener("x", a);
    t.addEventListener("y", () => calls.push("y"));
    expect(t.listenerCount("x")).toBe(2);
    t.dispatchEvent(new Event("x"));
    t.dispatchEvent(new Event("x"));
    expect(calls).toEqual(["a", "b", "a", "b"]);
  });

  it("treat capture as part of a listener's identity (listening and removing)", () => {
    const t = new TypedEventEmitter<Events>();
    let n = 0;
    const f = () => n++;
    t.addEventListener("x", f);
    t.addEventListener("x", f, { capture: true });
    expect(t.listenerCount("x")).toBe(2);
    t.dispatchEvent(new Event("x"));
    expect(n).toBe(2);
    t.removeEventListener("x", f);
    expect(t.listenerCount("x")).toBe(1);
  });

  it("honour once and signal", () => {
    const t = new TypedEventEmitter<Events>();
    const calls: string[] = [];
    const ac = new AbortController();
    t.addEventListener("x", () => calls.push("once"), { once: true });
    t.addEventListener("x", () => calls.push("signal"), { signal: ac.signal });
    t.dispatchEvent(new Event("x"));
    ac.abort();
    t.dispatchEvent(new Event("x"));
    expect(calls).toEqual(["once", "signal"]);
    expect(t.listenerCount("x")).toBe(0);
    // an aborted signal adds nothing
    t.addEventListener("x", () => calls.push("late"), { signal: ac.signal });
    expect(t.listenerCount("x")).toBe(0);
  });

  it("do not run a listener removed during a dispatch; one added during it runs from the next", () => {
    const t = new TypedEventEmitter<Events>();
    const calls: string[] = [];
    const second = () => calls.push("second");
    const added = () => calls.push("added");
    t.addEventListener("x", () => {
      calls.push("first");
      t.removeEventListener("x", second);
      t.addEventListener("x", added);
    });
    t.addEventListener("x", second);
    t.dispatchEvent(new Event("x"));
    expect(calls).toEqual(["first"]);
    t.dispatchEvent(new Event("x"));
    expect(calls).toEqual(["first", "first", "added"]);
  });

  it("call handleEvent objects, return !defaultPrevented, and a throwing listener stops no other (its error is thrown on the next tick)", async () => {
    const t = new TypedEventEmitter<Events>();
    const seen: Event[] = [];
    t.addEventListener("x", () => {
      throw new Error("listener failed");
    });
    t.addEventListener("x", { handleEvent: (evt: Event) => void seen.push(evt) });
    t.addEventListener("x", (evt) => evt.preventDefault());
    const uncaught = new Promise<Error>((resolve) => {
      const listeners = process.listeners("uncaughtException");
      process.removeAllListeners("uncaughtException");
      process.once("uncaughtException", (err) => {
        for (const l of listeners) process.on("uncaughtException", l);
        resolve(err);
      });
    });
    const evt = new Event("x", { cancelable: true });
    expect(t.dispatchEvent(evt)).toBe(false);
    expect(seen).toEqual([evt]);
    await tick();
    expect((await uncaught).message).toBe("listener failed");
    expect(t.dispatchEvent(new Event("y"))).toBe(true);
  });
});
