// Member relays (lib/p2p/member-relay.ts): who may reserve and connect, when a member counts as
// publicly reachable, and the relay server held off until switched on. The lab proves the whole
// (test/natlab/nat.test.ts); here the decisions.
import { describe, expect, it } from "vitest";
import { multiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";
import { MEMBER_RELAY_SERVICE, publicDirect, RelayAccess, relayGaterHooks, switchable } from "../../lib/p2p/member-relay.ts";
import { pendingGater } from "../../lib/p2p/gater.ts";
import { deriveKeys, newToken, parseToken, providerKey } from "../../lib/p2p/token.ts";

const M = peerIdFromString("12D3KooWQsR7bJKzGGwQyMJQ2VSAJgZ5p6MAD1XjNvZiXQL7ryNH");
const S = peerIdFromString("12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK");

function access(members: string[]): RelayAccess {
  const a = new RelayAccess();
  a.allow = (peer) => Promise.resolve(members.includes(peer));
  return a;
}

describe("member relay access", () => {
  it("a member may reserve; a stranger may not", async () => {
    const hooks = relayGaterHooks(access([M.toString()]));
    expect(await hooks.denyInboundRelayReservation!(M)).toBe(false);
    expect(await hooks.denyInboundRelayReservation!(S)).toBe(true);
  });

  it("a circuit needs members at both ends", async () => {
    const hooks = relayGaterHooks(access([M.toString()]));
    const M2 = peerIdFromString("12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq");
    expect(await relayGaterHooks(access([M.toString(), M2.toString()])).denyOutboundRelayedConnection!(M, M2)).toBe(false);
    expect(await hooks.denyOutboundRelayedConnection!(S, M)).toBe(true);
    expect(await hooks.denyOutboundRelayedConnection!(M, S)).toBe(true);
  });

  it("until the member gate answers, nobody", async () => {
    const hooks = relayGaterHooks(new RelayAccess());
    expect(await hooks.denyInboundRelayReservation!(M)).toBe(true);
    expect(await hooks.denyOutboundRelayedConnection!(M, M)).toBe(true);
  });

  it("the hooks join the pending gater's, which keeps its own", async () => {
    const g = pendingGater(undefined, relayGaterHooks(access([])));
    expect(await g.denyInboundRelayReservation!(M)).toBe(true);
    expect(typeof g.denyInboundConnection).toBe("function");
    expect(pendingGater().denyInboundRelayReservation).toBeUndefined();
  });

  it("member relays are looked up under a token-derived key of their own, no service's", () => {
    const keys = deriveKeys(parseToken(newToken()));
    const other = deriveKeys(parseToken(newToken()));
    expect(providerKey(keys, MEMBER_RELAY_SERVICE).equals(providerKey(keys, "member-relay"))).toBe(false);
    expect(providerKey(keys, MEMBER_RELAY_SERVICE).equals(providerKey(other, MEMBER_RELAY_SERVICE))).toBe(false);
  });
});

describe("publicly reachable", () => {
  it("a public direct address counts; private, loopback, circuit and DNS addresses do not", () => {
    const addrs = [
      "/ip4/192.168.10.2/tcp/4001",
      "/ip4/127.0.0.1/tcp/4001",
      "/ip4/10.1.2.3/tcp/4001",
      "/ip6/::1/tcp/4001",
      "/ip4/100.128.0.5/tcp/4001/p2p/12D3KooWQsR7bJKzGGwQyMJQ2VSAJgZ5p6MAD1XjNvZiXQL7ryNH/p2p-circuit",
      "/dns4/example.org/tcp/4001",
    ].map((a) => multiaddr(a));
    expect(publicDirect(addrs)).toEqual([]);
    const pub = [multiaddr("/ip4/100.128.0.6/tcp/4001"), multiaddr("/ip6/2a00:1450::6/tcp/4001")];
    expect(publicDirect([...addrs, ...pub]).map(String)).toEqual(pub.map(String));
  });
});

describe("a service held off until switched on", () => {
  function fake() {
    const calls: string[] = [];
    return { calls, factory: (_c: unknown) => ({ start: () => void calls.push("start"), stop: () => void calls.push("stop"), other: 1 }) };
  }

  it("libp2p's start does nothing until enable(), which starts it then", async () => {
    const f = fake();
    const s = switchable(f.factory)({});
    await s.start();
    expect(f.calls).toEqual([]);
    expect(s.enabled).toBe(false);
    await s.enable();
    await s.enable();
    expect(f.calls).toEqual(["start"]);
    expect(s.enabled).toBe(true);
    await s.stop();
    expect(f.calls).toEqual(["start", "stop"]);
    expect(s.other).toBe(1);
  });

  it("enabled before libp2p starts it: started with the node, not before; never stopped when never started", async () => {
    const f = fake();
    const s = switchable(f.factory)({});
    await s.enable();
    expect(f.calls).toEqual([]);
    await s.start();
    expect(f.calls).toEqual(["start"]);
    const g = fake();
    const t = switchable(g.factory)({});
    await t.start();
    await t.stop();
    expect(g.calls).toEqual([]);
  });
});
