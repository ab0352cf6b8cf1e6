import { describe, expect, it } from "vitest";
import { AddrError, parseHostPort, parsePort, toMultiaddr } from "../../lib/p2p/addr.ts";
import { Members } from "../../lib/p2p/members.ts";
import { RendezvousTable } from "../../lib/p2p/rendezvous.ts";

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
