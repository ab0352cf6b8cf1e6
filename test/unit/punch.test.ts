// Hole punching parts (lib/p2p/punch.ts): which observed NAT mapping is used, the TCP dials
// sharing one local port (on loopback), and the DCUtR wrapper's address list.
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { tcp } from "@libp2p/tcp";
import { defaultLogger } from "@libp2p/logger";
import type { Transport } from "@libp2p/interface";
import { freeDialPort, MIN_OBSERVERS, OBSERVATION_TTL_MS, ObservedMappings, punchingDcutr, samePortDials } from "../../lib/p2p/punch.ts";

const A = multiaddr("/ip4/100.128.0.11/tcp/40000");

describe("observed mappings", () => {
  it("a mapping counts once observers at two different IP addresses reported it", () => {
    const m = new ObservedMappings();
    expect(MIN_OBSERVERS).toBe(2);
    m.record(A, "100.128.0.2", 0);
    m.record(A, "100.128.0.2", 1); // the same observer again
    expect(m.confirmed(2)).toEqual([]);
    m.record(multiaddr("/ip4/100.128.0.11/tcp/40000/p2p/12D3KooWQsR7bJKzGGwQyMJQ2VSAJgZ5p6MAD1XjNvZiXQL7ryNH"), "100.128.0.3", 3);
    expect(m.confirmed(4).map(String)).toEqual([A.toString()]);
  });

  it("random ports per connection (symmetric NAT): no two observers agree, nothing is used", () => {
    const m = new ObservedMappings();
    for (let i = 0; i < 8; i++) m.record(multiaddr(`/ip4/100.128.0.13/tcp/${30000 + i}`), `100.128.0.${2 + i}`, i);
    expect(m.confirmed(10)).toEqual([]);
  });

  it("private, IPv6 and non-TCP observations are ignored", () => {
    const m = new ObservedMappings();
    for (const a of ["/ip4/192.168.10.2/tcp/4001", "/ip4/10.0.0.1/tcp/4001", "/ip6/2001:db8::1/tcp/4001", "/ip4/100.128.0.11/udp/4001"]) {
      m.record(multiaddr(a), "100.128.0.2", 0);
      m.record(multiaddr(a), "100.128.0.3", 0);
    }
    expect(m.confirmed(1)).toEqual([]);
  });

  it("observations expire; the mapping most observers agree on comes first", () => {
    const m = new ObservedMappings();
    const B = multiaddr("/ip4/100.128.0.11/tcp/50000");
    m.record(A, "1.1.1.1", 0);
    m.record(A, "1.1.1.2", 0);
    m.record(B, "1.1.1.1", 10);
    m.record(B, "1.1.1.2", 10);
    m.record(B, "1.1.1.3", 10);
    expect(m.confirmed(20).map(String)).toEqual([B.toString(), A.toString()]);
    expect(m.confirmed(OBSERVATION_TTL_MS + 5).map(String)).toEqual([B.toString()]);
    expect(m.confirmed(OBSERVATION_TTL_MS + 20)).toEqual([]);
  });
});

describe("TCP dials from one local port", () => {
  const servers: Server[] = [];
  const accepted: Socket[] = [];
  let transport: Transport;
  const shared = { port: undefined as number | undefined };

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const s = createServer((c) => accepted.push(c));
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      servers.push(s);
    }
    Object.assign(shared, await freeDialPort());
    transport = samePortDials(tcp(), shared)({ logger: defaultLogger() } as never);
  });

  afterAll(() => {
    for (const c of accepted) c.destroy();
    for (const s of servers) s.close();
  });

  const connect = (port: number): Promise<Socket> =>
    (transport as unknown as { _connect(ma: Multiaddr, o: object): Promise<Socket> })._connect(multiaddr(`/ip4/127.0.0.1/tcp/${port}`), {
      signal: AbortSignal.timeout(5_000),
    });
  const portOf = (s: Server) => (s.address() as { port: number }).port;

  it("dials to different remote ends leave from the same local port; a second dial to the same one falls back", async () => {
    expect(shared.port).toBeGreaterThan(0);
    const a = await connect(portOf(servers[0]));
    const b = await connect(portOf(servers[1]));
    expect(a.localPort).toBe(shared.port);
    expect(b.localPort).toBe(shared.port);
    // same remote address and port: the 4-tuple is taken, an ephemeral port is used instead
    const c = await connect(portOf(servers[0]));
    expect(c.localPort).not.toBe(shared.port);
    for (const s of [a, b, c]) s.destroy();
  });

  it("without a preset port, the first dial's port is kept for the next ones", async () => {
    const t = samePortDials(tcp())({ logger: defaultLogger() } as never) as unknown as { _connect(ma: Multiaddr, o: object): Promise<Socket> };
    const a = await t._connect(multiaddr(`/ip4/127.0.0.1/tcp/${portOf(servers[0])}`), { signal: AbortSignal.timeout(5_000) });
    const b = await t._connect(multiaddr(`/ip4/127.0.0.1/tcp/${portOf(servers[1])}`), { signal: AbortSignal.timeout(5_000) });
    expect(b.localPort).toBe(a.localPort);
    a.destroy();
    b.destroy();
  });
});

describe("DCUtR wrapper", () => {
  it("DCUtR's address manager also lists the confirmed mappings of dials we made, with our peer id", () => {
    const events = new EventTarget();
    const own = multiaddr("/ip4/192.168.10.2/tcp/4001/p2p/12D3KooWQsR7bJKzGGwQyMJQ2VSAJgZ5p6MAD1XjNvZiXQL7ryNH");
    const peerId = { toString: () => "12D3KooWQsR7bJKzGGwQyMJQ2VSAJgZ5p6MAD1XjNvZiXQL7ryNH" };
    let seen: { getAddresses(): Multiaddr[]; other(): string } | undefined;
    const components = { events, peerId, addressManager: { getAddresses: () => [own], other: () => "passed through" } };
    punchingDcutr((c: { addressManager: NonNullable<typeof seen> }) => (seen = c.addressManager))(components);
    const identify = (observed: string, remote: string, direction: "inbound" | "outbound") =>
      events.dispatchEvent(
        new CustomEvent("peer:identify", { detail: { observedAddr: multiaddr(observed), connection: { direction, remoteAddr: multiaddr(remote) } } }),
      );
    identify("/ip4/100.128.0.11/tcp/40000", "/ip4/100.128.0.2/tcp/4001", "outbound");
    expect(seen!.getAddresses()).toEqual([own]);
    // a relayed connection and an inbound one are no observations of our dials' mapping
    identify("/ip4/100.128.0.11/tcp/40000", "/ip4/100.128.0.5/tcp/4001/p2p/12D3KooWPxQbo2KC2zPChMw1AhPwh9ePVhMpqSqyr28sfMaES2LB/p2p-circuit", "outbound");
    identify("/ip4/100.128.0.11/tcp/40000", "/ip4/100.128.0.4/tcp/4001", "inbound");
    expect(seen!.getAddresses()).toEqual([own]);
    identify("/ip4/100.128.0.11/tcp/40000", "/ip4/100.128.0.3/tcp/4001", "outbound");
    expect(seen!.getAddresses().map(String)).toEqual([own.toString(), `/ip4/100.128.0.11/tcp/40000/p2p/${peerId.toString()}`]);
    expect(seen!.other()).toBe("passed through");
  });
});
