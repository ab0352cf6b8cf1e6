// Per new tunnel (issue 10): libp2p wrote the stream's protocol into the peer store for every
// stream it negotiated, 6-9 % of an agent's CPU per tunnelled TCP connection. The patch
// (patches/libp2p+*.patch, connection.js) merges a protocol once per connection.
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";

const PROTOCOL = "/entangle-test/merge/1.0.0";
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
