// Per new tunnel (issue 10), costs on libp2p's stream path (patches/libp2p+*.patch connection.js,
// patches/@chainsafe+libp2p-yamux+*.patch muxer.js); each test fails on the unpatched package:
//  - libp2p wrote the stream's protocol into the peer store for every stream it negotiated, 6-9 %
//    of an agent's CPU per tunnelled TCP connection: now once per protocol and connection
//  - the stream limit of an outbound stream whose protocol has no handler on this side (every
//    tunnel stream of the connect side) was found by throwing and catching UnhandledProtocolError
//  - a debug logger (three debug instances) was made per stream, and again per negotiation
// (the last two ~1 % of an agent's CPU per new connection each)
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Stream } from "@libp2p/interface";

const PROTOCOL = "/entangle-test/merge/1.0.0";

interface WithRegistrar {
  components: { registrar: { getHandler(protocol: string): unknown } };
}
const nodes: Libp2p[] = [];

async function node(): Promise<Libp2p> {
  const n = await createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  nodes.push(n);
  return n;
}

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

describe("the peer store on libp2p's stream path", () => {
  it("records a stream's protocol once per connection, not for every stream, on both sides", async () => {
    const [a, b] = [await node(), await node()];
    await b.handle(PROTOCOL, (stream) => void stream.close(), { maxInboundStreams: 64 });
    const conn = await a.dial(b.getMultiaddrs()[0]);
    const merges = (n: Libp2p) => {
      const spy = vi.spyOn(n.peerStore, "merge");
      return () => spy.mock.calls.filter(([, data]) => data.protocols?.includes(PROTOCOL)).length;
    };
    const [byA, byB] = [merges(a), merges(b)];
    for (let i = 0; i < 20; i++) {
      const s = await conn.newStream(PROTOCOL);
      await s.close();
    }
    await new Promise((r) => setTimeout(r, 200)); // b's side of the last streams
    expect(byA()).toBe(1);
    expect(byB()).toBe(1);
    // the peer store still knows the protocol
    expect((await a.peerStore.get(b.peerId)).protocols).toContain(PROTOCOL);
  });
});

describe("stream limits on libp2p's stream path", () => {
  it("an outbound stream of a protocol this side does not handle throws nothing to find its limit; limits still apply", async () => {
    const [a, b] = [await node(), await node()];
    const held: Stream[] = [];
    await b.handle(PROTOCOL, (stream) => void held.push(stream), { maxInboundStreams: 3 });
    const conn = await a.dial(b.getMultiaddrs()[0]);
    const lookups = vi.spyOn((a as unknown as WithRegistrar).components.registrar, "getHandler");
    for (let i = 0; i < 3; i++) await conn.newStream(PROTOCOL);
    // unpatched: getHandler() threw UnhandledProtocolError for each of them (caught inside)
    expect(lookups.mock.results.filter((r) => r.type === "throw")).toHaveLength(0);
    // b's handler limit (found in its registrar) still holds: the fourth is refused
    const fourth = await conn.newStream(PROTOCOL);
    for (let i = 0; i < 50 && fourth.status === "open"; i++) await new Promise((r) => setTimeout(r, 20));
    expect(fourth.status).toBe("reset");
    expect(held).toHaveLength(3);
    // and a's own outbound limit, given with the stream
    await expect(conn.newStream(PROTOCOL, { maxOutboundStreams: 1, signal: AbortSignal.timeout(5_000) })).rejects.toThrow(/Too many outbound protocol streams/);
  });
});

describe("stream loggers", () => {
  it("streams of a connection share one logger while debug logging is off, and the scopes made from it", async () => {
    const [a, b] = [await node(), await node()];
    await b.handle(PROTOCOL, (stream) => void stream.close(), { maxInboundStreams: 64 });
    const conn = await a.dial(b.getMultiaddrs()[0]);
    const [s1, s2] = [await conn.newStream(PROTOCOL), await conn.newStream(PROTOCOL)];
    expect(process.env.DEBUG ?? "").toBe("");
    // unpatched: a logger per stream (its own namespace, three debug instances)
    expect(s1.log).toBe(s2.log);
    expect(s1.log.newScope("mss:select")).toBe(s2.log.newScope("mss:select"));
    await Promise.all([s1.close(), s2.close()]);
  });

  it("with DEBUG set, each stream gets its own logger as before", async () => {
    const [a, b] = [await node(), await node()];
    await b.handle(PROTOCOL, (stream) => void stream.close(), { maxInboundStreams: 64 });
    const conn = await a.dial(b.getMultiaddrs()[0]);
    vi.stubEnv("DEBUG", "entangle-test-nothing");
    try {
      const [s1, s2] = [await conn.newStream(PROTOCOL), await conn.newStream(PROTOCOL)];
      expect(s1.log).not.toBe(s2.log);
      await Promise.all([s1.close(), s2.close()]);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
