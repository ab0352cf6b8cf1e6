import { describe, expect, it } from "vitest";
import { AddrError, formatHostPort, parseHostPort, parsePort, toMultiaddr } from "../../lib/p2p/addr.ts";
import { Members } from "../../lib/p2p/members.ts";
import { RENDEZVOUS_LIMITS, RendezvousTable } from "../../lib/p2p/rendezvous.ts";
import { PendingBySource, sourceKey } from "../../lib/p2p/gater.ts";

describe("addresses", () => {
  it("parses HOST:PORT, [v6]:PORT and multiaddrs", () => {
    expect(parseHostPort("127.0.0.1:80")).toEqual({ host: "127.0.0.1", port: 80 });
    expect(parseHostPort("[::1]:8080")).toEqual({ host: "::1", port: 8080 });
    expect(toMultiaddr("127.0.0.1:4001").toString()).toBe("/ip4/127.0.0.1/tcp/4001");
    expect(toMultiaddr("[::1]:4001").toString()).toBe("/ip6/::1/tcp/4001");
    expect(toMultiaddr("relay.example:4001").toString()).toBe("/dns/relay.example/tcp/4001");
    expect(toMultiaddr("/ip4/127.0.0.1/tcp/1").toString()).toBe("/ip4/127.0.0.1/tcp/1");
    expect(parsePort("65535")).toBe(65535);
  });

  it.each(["", "80", "host:", ":80", "h:0", "h:65536", "h:-1", "h:8o", "a:b:c"])("rejects %j", (v) => {
    expect(() => parseHostPort(v)).toThrow(AddrError);
  });

  it("a bad port names what and the value: out of range or not a number", () => {
    expect(() => parsePort("0", "--target")).toThrow(/^--target: must be 1-65535, got 0$/);
    expect(() => parsePort(" 70000 ", "--peer")).toThrow(/^--peer: must be 1-65535, got 70000$/);
    expect(() => parsePort("8o")).toThrow(/^port: must be a number 1-65535, got "8o"$/);
    expect(() => parsePort("123456")).toThrow(/^port: must be a number 1-65535, got "123456"$/);
    expect(parsePort(" 443 ")).toBe(443);
  });

  it("formats HOST:PORT, bracketing IPv6 literals only", () => {
    expect(formatHostPort({ host: "::1", port: 80 })).toBe("[::1]:80");
    expect(formatHostPort({ host: "10.0.0.1", port: 80 })).toBe("10.0.0.1:80");
    expect(formatHostPort({ host: "svc.ns", port: 8080 })).toBe("svc.ns:8080");
  });

  it("rejects a broken multiaddr", () => {
    expect(() => toMultiaddr("/ip4/999.1.1.1/tcp/1")).toThrow(AddrError);
  });
});

describe("members", () => {
  it("prefers the least busy provider, rotates among equals, skips failed ones", () => {
    const m = new Members();
    m.add("a", ["svc"]);
    m.add("b", ["svc"]);
    m.add("c", ["other"]);
    const firsts = new Set([m.providers("svc")[0].id, m.providers("svc")[0].id]);
    expect(firsts).toEqual(new Set(["a", "b"]));
    m.providers("svc").find((x) => x.id === "a")!.active = 3;
    expect(m.providers("svc")[0].id).toBe("b");
    m.markFailed("b", Date.now());
    expect(m.providers("svc").map((x) => x.id)).toEqual(["a"]);
    expect(m.providers("svc", Date.now() + 10_000).map((x) => x.id)).toContain("b");
    expect(m.providers("nope")).toEqual([]);
  });
});

describe("rendezvous table", () => {
  it("returns the other registrants of a namespace and expires old ones", () => {
    const t = new RendezvousTable();
    const ns = "a".repeat(64);
    expect(t.register(ns, "p1", ["/ip4/127.0.0.1/tcp/1"], 0)).toEqual([]);
    expect(t.register(ns, "p2", [], 1000)).toEqual([{ id: "p1", addrs: ["/ip4/127.0.0.1/tcp/1"] }]);
    expect(t.register("b".repeat(64), "p3", [], 1000)).toEqual([]);
    expect(t.register(ns, "p2", [], 60_000)).toEqual([]);
  });
});

describe("rendezvous table: nobody can fill it", () => {
  const ns = (i: number) => i.toString(16).padStart(64, "0");
  it("one peer holds a few namespaces; the members' namespace still takes registrations", () => {
    const t = new RendezvousTable();
    let refused = 0;
    for (let i = 0; i < 4096; i++) {
      try {
        t.register(ns(i), "stranger", [], 0, "10.0.0.66");
      } catch {
        refused++;
      }
    }
    expect(refused).toBe(4096 - RENDEZVOUS_LIMITS.namespacesPerPeer);
    expect(t.register("f".repeat(64), "member", [], 0, "10.0.0.1")).toEqual([]);
  });

  it("many peer ids from one source address are bounded too", () => {
    const t = new RendezvousTable();
    let accepted = 0;
    for (let i = 0; i < 4096; i++) {
      try {
        t.register(ns(i), `sybil-${i}`, [], 0, "10.0.0.66");
        accepted++;
      } catch {
        // refused: the source holds its share
      }
    }
    expect(accepted).toBe(RENDEZVOUS_LIMITS.namespacesPerSource);
    expect(t.register("f".repeat(64), "member", [], 0, "10.0.0.1")).toEqual([]);
  });

  it("a peer's share frees up when its registrations expire", () => {
    const t = new RendezvousTable();
    for (let i = 0; i < RENDEZVOUS_LIMITS.namespacesPerPeer; i++) t.register(ns(i), "p", [], 0, "10.0.0.2");
    expect(() => t.register(ns(99), "p", [], 1, "10.0.0.2")).toThrow();
    expect(t.register(ns(99), "p", [], 60_000, "10.0.0.2")).toEqual([]);
    // refreshing a namespace it holds is always fine
    expect(t.register(ns(99), "p", [], 60_001, "10.0.0.2")).toEqual([]);
  });
});

describe("pending connections per source", () => {
  it("an IPv4 address or an IPv6 /64 is one source", () => {
    expect(sourceKey("192.0.2.1")).toBe("192.0.2.1");
    expect(sourceKey("2001:db8:0:1::5")).toBe(sourceKey("2001:0db8:0000:0001:ffff::9"));
    expect(sourceKey("2001:db8:0:1::5")).not.toBe(sourceKey("2001:db8:0:2::5"));
    expect(sourceKey("::1")).toBe("0:0:0:0");
  });

  it("takes up to the limit per source and gives slots back", () => {
    const p = new PendingBySource(2);
    expect([p.take("a"), p.take("a"), p.take("a"), p.take("b")]).toEqual([true, true, false, true]);
    p.release("a");
    expect(p.take("a")).toBe(true);
    p.release("a");
    p.release("a");
    p.release("b");
    expect(p.sources).toBe(0);
  });
});
