// lib/p2p/addr.ts edges the mutation run found untested: anchored HOST:PORT and port patterns,
// the default `what` labels in messages, dns host checks, toPeerMultiaddr.
import { describe, expect, it } from "vitest";
import { AddrError, parseHostPort, parsePort, toAnnounceMultiaddr, toMultiaddr, toPeerMultiaddr } from "../../lib/p2p/addr.ts";

const PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";

describe("parseHostPort: the whole value, nothing before or after", () => {
  it.each(["x[::1]:80", "[::1]:80x", "[::1]:80\n", "a]:80", "h:80 ", "h:80x", " [::1]:80", "a:b:80", "x:[::1]:80"])("rejects %j", (v) => {
    expect(() => parseHostPort(v)).toThrow(AddrError);
  });
  it("default label and the value in the message", () => {
    expect(() => parseHostPort("nope")).toThrow(/^address: expected HOST:PORT, got "nope"$/);
    expect(() => parseHostPort("h:0")).toThrow(/^address: must be 1-65535, got 0$/);
    expect(() => parseHostPort("h:0", "--listen")).toThrow(/^--listen: must be 1-65535, got 0$/);
  });
  it("port 0 only where allowed, and only exactly 0", () => {
    expect(parseHostPort("h:0", "l", true)).toEqual({ host: "h", port: 0 });
    expect(parseHostPort("[::1]:0", "l", true)).toEqual({ host: "::1", port: 0 });
    expect(parseHostPort("h:00080", "l", true)).toEqual({ host: "h", port: 80 });
    expect(() => parseHostPort("h:00", "l", false)).toThrow(AddrError);
  });
});

describe("parsePort", () => {
  it("a number in or out of range", () => {
    expect(parsePort(80)).toBe(80);
    expect(() => parsePort(0)).toThrow(/^port: must be 1-65535, got 0$/);
    expect(() => parsePort(" 00000 ")).toThrow(/^port: must be 1-65535, got 0$/);
    expect(() => parsePort("x1")).toThrow(/^port: must be a number 1-65535, got "x1"$/);
    expect(() => parsePort("1x")).toThrow(/^port: must be a number 1-65535, got "1x"$/);
  });
});

describe("toMultiaddr", () => {
  it("messages carry the label and the value", () => {
    expect(() => toMultiaddr("/ip4/999.1.1.1/tcp/1")).toThrow(/^address: invalid multiaddr "\/ip4\/999\.1\.1\.1\/tcp\/1": ./);
    expect(() => toMultiaddr("/bogus", "--peer")).toThrow(/^--peer: invalid multiaddr "\/bogus": ./);
    expect(() => toMultiaddr("nope")).toThrow(/^address: expected HOST:PORT, got "nope"$/);
  });
  it("a dns host with a slash, blank or control character is refused, naming host and value", () => {
    expect(() => toMultiaddr("a/p2p/x:1")).toThrow(/^address: "a\/p2p\/x" in "a\/p2p\/x:1" is not a host name or an IP address$/);
    expect(() => toMultiaddr("a b:1", "--peer")).toThrow(/^--peer: "a b" in "a b:1"/);
    expect(() => toMultiaddr("a\tb:1")).toThrow(AddrError);
    expect(() => toMultiaddr("a\u0007b:1")).toThrow(AddrError);
    expect(() => toMultiaddr("a\u0085b:1")).toThrow(AddrError);
    expect(toMultiaddr("relay-1.example:0").toString()).toBe("/dns/relay-1.example/tcp/0");
  });
});

describe("toPeerMultiaddr", () => {
  it("HOST:PORT and multiaddrs with a port and a valid peer id", () => {
    expect(toPeerMultiaddr("10.0.0.1:4001").toString()).toBe("/ip4/10.0.0.1/tcp/4001");
    expect(toPeerMultiaddr(`/ip4/10.0.0.1/tcp/4001/p2p/${PEER}`).toString()).toBe(`/ip4/10.0.0.1/tcp/4001/p2p/${PEER}`);
    expect(toPeerMultiaddr(`/dnsaddr/bootstrap.example/p2p/${PEER}`).toString()).toBe(`/dnsaddr/bootstrap.example/p2p/${PEER}`);
  });
  it("no TCP port, port 0, a bad peer id: refused with the label and the value", () => {
    expect(() => toPeerMultiaddr("/ip4/10.0.0.1/udp/1")).toThrow(/^peer: "\/ip4\/10\.0\.0\.1\/udp\/1" names no TCP port$/);
    expect(() => toPeerMultiaddr("10.0.0.1:0", "--peer")).toThrow(/^--peer: "10\.0\.0\.1:0" has port 0, which cannot be dialed$/);
    expect(() => toPeerMultiaddr("/ip4/10.0.0.1/tcp/0")).toThrow(/^peer: .* has port 0/);
    expect(() => toPeerMultiaddr("/ip4/10.0.0.1/tcp/1/p2p/12D3KooWabc")).toThrow(
      /^peer: "\/ip4\/10\.0\.0\.1\/tcp\/1\/p2p\/12D3KooWabc" has an invalid peer id "12D3KooWabc"$/,
    );
    expect(() => toPeerMultiaddr(`/ip4/10.0.0.1/tcp/1/p2p/${PEER}/p2p-circuit/p2p/Qm1111`)).toThrow(/invalid peer id "Qm1111"$/);
  });
});

describe("toAnnounceMultiaddr: an address others can dial", () => {
  it("takes HOST:PORT and multiaddrs with a specific host and a port", () => {
    expect(toAnnounceMultiaddr("203.0.113.7:4001").toString()).toBe("/ip4/203.0.113.7/tcp/4001");
    expect(toAnnounceMultiaddr("[2001:db8::1]:4001").toString()).toBe("/ip6/2001:db8::1/tcp/4001");
    expect(toAnnounceMultiaddr("edge.example.com:4001").toString()).toBe("/dns/edge.example.com/tcp/4001");
    expect(toAnnounceMultiaddr("/ip4/203.0.113.7/tcp/4001").toString()).toBe("/ip4/203.0.113.7/tcp/4001");
  });
  it.each([
    ["203.0.113.7:0", /has port 0/],
    ["/ip4/203.0.113.7/tcp/0", /has port 0/],
    ["0.0.0.0:4001", /not a specific address/],
    ["[::]:4001", /not a specific address/],
    ["/ip4/203.0.113.7/udp/4001", /names no TCP port/],
    [`/ip4/203.0.113.7/tcp/4001/p2p/${PEER}`, /must not name a peer/],
    ["nope", /^--p2p-announce: expected HOST:PORT/],
  ])("refuses %j", (v, msg) => {
    expect(() => toAnnounceMultiaddr(v)).toThrow(AddrError);
    expect(() => toAnnounceMultiaddr(v)).toThrow(msg);
  });
});
