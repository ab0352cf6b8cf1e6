// Hole punching parts (lib/p2p/punch.ts): which observed NAT mapping is used, the TCP dials
// sharing one local port (on loopback), and the DCUtR wrapper's address list.
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { tcp } from "@libp2p/tcp";
import { defaultLogger } from "@libp2p/logger";
import type { Transport } from "@libp2p/interface";
import {
  countPunches,
  LINGER_MAX_MS,
  lingering,
  freeDialPort,
  hasDirect,
  MIN_OBSERVERS,
  OBSERVATION_TTL_MS,
  ObservedMappings,
  punchingDcutr,
  samePortDials,
} from "../../lib/p2p/punch.ts";

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

describe("hole punches counted by DCUtR exchange", () => {
  const PEER = { toString: () => "12D3KooWQsR7bJKzGGwQyMJQ2VSAJgZ5p6MAD1XjNvZiXQL7ryNH" };
  const relayed = { status: "open", remoteAddr: multiaddr("/ip4/100.128.0.5/tcp/4001/p2p/12D3KooWPxQbo2KC2zPChMw1AhPwh9ePVhMpqSqyr28sfMaES2LB/p2p-circuit") };
  const direct = { status: "open", remoteAddr: multiaddr("/ip4/100.128.0.11/tcp/40000") };

  it("a peer is reached directly when an open connection to it is no circuit", () => {
    expect(hasDirect([])).toBe(false);
    expect(hasDirect([relayed])).toBe(false);
    expect(hasDirect([{ ...direct, status: "closed" }])).toBe(false);
    expect(hasDirect([relayed, direct])).toBe(true);
  });

  /** A DCUtR service as @libp2p/dcutr 3 has it: both entry points; each exchange ends as told. */
  function fakeDcutr(conns: Array<typeof direct>, ends: { inbound: "punched" | "failed" | "threw"; handler: "punched" | "threw" }) {
    const run = (how: string) => {
      if (how === "punched") conns.push(direct);
      if (how === "threw") return Promise.reject(new Error("no dialable addresses"));
      return Promise.resolve();
    };
    return {
      upgradeInbound: (_relayed: { remotePeer: unknown }) => run(ends.inbound),
      handleIncomingUpgrade: (_stream: unknown, _relayed: { remotePeer: unknown }) => run(ends.handler),
    };
  }

  it("each exchange is an attempt; a success only when it left a direct connection, on either side", async () => {
    const seen: string[] = [];
    const conns: Array<typeof direct> = [relayed];
    const cm = { getConnections: () => conns };
    const s = countPunches(fakeDcutr(conns, { inbound: "failed", handler: "threw" }), cm as never, { onPunch: (r, p) => seen.push(`${r} ${p}`) });
    await s.upgradeInbound({ remotePeer: PEER });
    await expect(s.handleIncomingUpgrade({}, { remotePeer: PEER })).rejects.toThrow("no dialable");
    expect(seen).toEqual([`attempt ${PEER.toString()}`, `attempt ${PEER.toString()}`]);

    const ok: string[] = [];
    const conns2: Array<typeof direct> = [relayed];
    const t = countPunches(fakeDcutr(conns2, { inbound: "punched", handler: "punched" }), { getConnections: () => conns2 } as never, {
      onPunch: (r) => ok.push(r),
    });
    await t.upgradeInbound({ remotePeer: PEER });
    await t.handleIncomingUpgrade({}, { remotePeer: PEER });
    expect(ok).toEqual(["attempt", "success", "attempt", "success"]);
  });

  it("wraps the service punchingDcutr builds, before it starts", async () => {
    const seen: string[] = [];
    const conns: Array<typeof direct> = [relayed];
    const components = {
      events: new EventTarget(),
      peerId: PEER,
      addressManager: { getAddresses: () => [] },
      connectionManager: { getConnections: () => conns },
    };
    const service = punchingDcutr(() => fakeDcutr(conns, { inbound: "punched", handler: "punched" }), undefined, { onPunch: (r) => seen.push(r) })(
      components,
    ) as ReturnType<typeof fakeDcutr>;
    await service.upgradeInbound({ remotePeer: PEER });
    expect(seen).toEqual(["attempt", "success"]);
    expect(() => countPunches({}, components.connectionManager as never, {})).toThrow("no upgradeInbound");
  });
});

describe("a relayed connection DCUtR replaced lingers while tunnels use it", () => {
  function relayedConn(protocols: string[]) {
    const calls: string[] = [];
    const conn = {
      remotePeer: { toString: () => "peer" },
      status: "open",
      streams: protocols.map((protocol) => ({ protocol })),
      close: () => {
        calls.push("close");
        conn.status = "closed";
        return Promise.resolve();
      },
      abort: () => void calls.push("abort"),
      newStream: function (this: unknown) {
        return this;
      },
    };
    return { conn, calls };
  }
  const tunnels = (protocols: string[]) => protocols.includes("/entangle/tunnel/1.0.0");

  it("closed at once when no tunnel is on it; after the last tunnel ends otherwise", async () => {
    const idle = relayedConn(["/ipfs/id/1.0.0"]);
    await lingering(idle.conn, tunnels).close();
    expect(idle.calls).toEqual(["close"]);

    vi.useFakeTimers();
    try {
      const busy = relayedConn(["/entangle/tunnel/1.0.0", "/libp2p/dcutr"]);
      const seen = lingering(busy.conn, tunnels);
      // everything else reaches the connection itself, methods bound to it
      expect(seen.remotePeer.toString()).toBe("peer");
      expect(seen.newStream()).toBe(busy.conn);
      await seen.close();
      await vi.advanceTimersByTimeAsync(5_000);
      expect(busy.calls).toEqual([]);
      busy.conn.streams = [];
      await vi.advanceTimersByTimeAsync(1_000);
      expect(busy.calls).toEqual(["close"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("closed after LINGER_MAX_MS even when a tunnel is still on it; as it was without a predicate", async () => {
    vi.useFakeTimers();
    try {
      const busy = relayedConn(["/entangle/tunnel/1.0.0"]);
      await lingering(busy.conn, tunnels).close();
      await vi.advanceTimersByTimeAsync(LINGER_MAX_MS - 2_000);
      expect(busy.calls).toEqual([]);
      await vi.advanceTimersByTimeAsync(3_000);
      expect(busy.calls).toEqual(["close"]);
    } finally {
      vi.useRealTimers();
    }
    const plain = relayedConn(["/entangle/tunnel/1.0.0"]);
    expect(lingering(plain.conn)).toBe(plain.conn);
  });

  it("DCUtR's exchanges get the lingering connection", async () => {
    const busy = relayedConn(["/entangle/tunnel/1.0.0"]);
    const service = {
      upgradeInbound: (relayed: { close(): Promise<void> }) => relayed.close(),
      handleIncomingUpgrade: (_s: unknown, relayed: { close(): Promise<void> }) => relayed.close(),
    };
    countPunches(service, { getConnections: () => [] }, { relayedBusy: tunnels });
    await service.upgradeInbound(busy.conn as never);
    await service.handleIncomingUpgrade({}, busy.conn as never);
    expect(busy.calls).toEqual([]);
    busy.conn.status = "closed";
  });
});
