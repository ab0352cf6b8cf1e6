// lib/p2p/rendezvous.ts, the relay's table on its own (no streams): the limits at their edges
// with their messages, expiry at its boundary, the once-a-second sweep freeing shares, a peer
// moving to a new address; and what registerAndDiscover asks the connection for.
import { describe, expect, it } from "vitest";
import type { Connection } from "@libp2p/interface";
import { RENDEZVOUS_LIMITS, RENDEZVOUS_PROTOCOL, RendezvousTable, registerAndDiscover } from "../../lib/p2p/rendezvous.ts";

const TTL = 30_000;
const ns = (i: number) => i.toString(16).padStart(64, "0");

describe("RendezvousTable limits", () => {
  it("a peer id: 4 namespaces, the 5th refused; refreshing one it holds is not a new one", () => {
    const t = new RendezvousTable();
    for (let i = 0; i < 4; i++) t.register(ns(i), "X", [], 0, `s${i}`);
    expect(() => t.register(ns(9), "X", [], 1, "s9")).toThrow(/^rendezvous: too many namespaces for this peer$/);
    expect(t.register(ns(0), "X", ["a"], 2, "s0")).toEqual([]);
    expect(RENDEZVOUS_LIMITS).toEqual({ namespacesPerPeer: 4, namespacesPerSource: 64 });
  });

  it("a source address: 64 namespaces over any peer ids, the 65th refused", () => {
    const t = new RendezvousTable();
    for (let i = 0; i < 64; i++) t.register(ns(i), `P${i}`, [], 0, "S");
    expect(() => t.register(ns(99), "Q", [], 1, "S")).toThrow(/^rendezvous: too many namespaces for this address$/);
    expect(t.register(ns(99), "Q", [], 1, "S2")).toEqual([]);
  });

  it("a peer moving to another address takes its share with it", () => {
    const t = new RendezvousTable();
    for (let i = 0; i < 64; i++) t.register(ns(i), `P${i}`, [], 0, "S");
    t.register(ns(0), "P0", [], 1, "T");
    expect(t.register(ns(99), "Q", [], 2, "S")).toEqual([]);
    for (let i = 1; i < 64; i++) t.register(ns(200 + i), `T${i}`, [], 3, "T");
    expect(() => t.register(ns(300), "R", [], 4, "T")).toThrow(/for this address/);
  });

  it("1024 peers per namespace, 4096 namespaces", () => {
    const t = new RendezvousTable();
    for (let i = 0; i < 1024; i++) t.register(ns(0), `P${i}`, [], 0, `src${i}`);
    expect(() => t.register(ns(0), "late", [], 1, "late")).toThrow(/^rendezvous namespace full$/);
    // the full namespace still answers its members
    expect(t.register(ns(0), "P0", [], 1, "src0")).toHaveLength(1023);
    const u = new RendezvousTable();
    for (let i = 0; i < 4096; i++) u.register(ns(i), `P${i}`, [], 0, `src${i}`);
    expect(() => u.register(ns(5000), "late", [], 1, "late")).toThrow(/^rendezvous table full$/);
    expect(u.register(ns(1), "late", [], 1, "late")).toEqual([{ id: "P1", addrs: [] }]);
    // once everything expired, the sweep empties the table: new namespaces fit again
    expect(u.register(ns(5000), "late2", [], TTL + 1, "late2")).toEqual([]);
  });
});

describe("RendezvousTable expiry", () => {
  it("an entry is returned up to its expiry time, not after", () => {
    const t = new RendezvousTable();
    t.register(ns(0), "A", ["a"], 0);
    expect(t.register(ns(0), "B", [], TTL)).toEqual([{ id: "A", addrs: ["a"] }]);
    const u = new RendezvousTable();
    u.register(ns(0), "A", ["a"], 0);
    u.register(ns(1), "Z", [], TTL - 500);
    expect(u.register(ns(0), "B", [], TTL + 1)).toEqual([]);
  });

  it("expired registrations free their peer's and address's shares", () => {
    const t = new RendezvousTable();
    for (let i = 0; i < 4; i++) t.register(ns(i), "X", [], 0, "S");
    for (let i = 4; i < 64; i++) t.register(ns(i), `P${i}`, [], 0, "S");
    // after expiry: X may hold 4 namespaces again, S 64, but no more than that
    for (let i = 0; i < 4; i++) t.register(ns(i), "X", [], TTL + 1, "S");
    expect(() => t.register(ns(100), "X", [], TTL + 2, "S")).toThrow(/for this peer/);
    for (let i = 4; i < 64; i++) t.register(ns(i), `Q${i}`, [], TTL + 3, "S");
    expect(() => t.register(ns(100), "R", [], TTL + 4, "S")).toThrow(/for this address/);
  });

  it("the sweep runs once a second: exactly a second after the last one counts", () => {
    const t = new RendezvousTable();
    for (let i = 0; i < 4; i++) t.register(ns(i), "X", [], 0, "S");
    t.register(ns(50), "Y", [], TTL - 999, "S2"); // a sweep at TTL - 999: nothing expired yet
    // one second later X's four have expired and are swept: X registers a fifth namespace
    expect(t.register(ns(9), "X", [], TTL + 1, "S")).toEqual([]);
  });

  it("a peer's expired entry, re-registered before a sweep, is counted once", () => {
    const t = new RendezvousTable();
    t.register(ns(0), "X", [], 0, "S");
    t.register(ns(50), "Y", [], TTL - 1, "S2"); // sweep: X not expired yet
    t.register(ns(0), "X", [], TTL + 1, "S"); // no sweep: X's entry expired, replaced
    for (let i = 1; i < 4; i++) t.register(ns(i), "X", [], TTL + 2, "S");
    expect(() => t.register(ns(9), "X", [], TTL + 3, "S")).toThrow(/for this peer/);
  });
});

describe("registerAndDiscover", () => {
  it("opens the rendezvous protocol, on limited (relayed) connections too", async () => {
    const asked: Array<{ protocol: string; options: { runOnLimitedConnection?: boolean; signal?: AbortSignal } }> = [];
    const conn = {
      newStream: async (protocol: string, options: { runOnLimitedConnection?: boolean; signal?: AbortSignal }) => {
        asked.push({ protocol, options });
        throw new Error("no stream here");
      },
    } as unknown as Connection;
    await expect(registerAndDiscover(conn, ns(0), [])).rejects.toThrow("no stream here");
    expect(RENDEZVOUS_PROTOCOL).toBe("/entangle/rendezvous/1.0.0");
    expect(asked).toEqual([{ protocol: "/entangle/rendezvous/1.0.0", options: { signal: expect.any(AbortSignal), runOnLimitedConnection: true } }]);
  });
});
