// Direct vs relayed (issue 9): how a connection's path is told, which connection a new tunnel
// takes, and the path label on the byte counters.
import { describe, expect, it } from "vitest";
import type { Connection } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { createMetrics, pathOf } from "../../lib/p2p/metrics.ts";
import { pickConnection } from "../../lib/p2p/tunnels.ts";

const ID = "12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8";
const RELAY = "12D3KooWNoyVgGzwshtPxxSGHi9XhdWcufXvKoKEM2C3Nf48VTpo";
const direct = (status = "open") => ({ status, remoteAddr: multiaddr(`/ip4/100.128.0.11/tcp/4001/p2p/${ID}`) }) as unknown as Connection;
const relayed = (status = "open") =>
  ({ status, remoteAddr: multiaddr(`/ip4/100.128.0.5/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${ID}`) }) as unknown as Connection;

describe("connection paths", () => {
  it("a circuit address is relayed, anything else direct", () => {
    expect(pathOf(direct())).toBe("direct");
    expect(pathOf(relayed())).toBe("relayed");
  });

  it("a new tunnel takes a direct connection when there is one, whatever the order", () => {
    const d = direct();
    expect(pickConnection([relayed(), d])).toBe(d);
    expect(pickConnection([d, relayed()])).toBe(d);
    const r = relayed();
    expect(pickConnection([direct("closing"), r])).toBe(r);
    expect(pickConnection([relayed("closed")])).toBeUndefined();
    expect(pickConnection([])).toBeUndefined();
  });

  it("bytes are counted by direction and path, all four shown from the start", async () => {
    const m = createMetrics();
    m.counters.relayed.sent(5);
    m.counters.direct.received(7);
    const text = await m.registry.metrics();
    expect(text).toContain('entangle_tunnel_bytes_total{direction="sent",path="relayed"} 5');
    expect(text).toContain('entangle_tunnel_bytes_total{direction="received",path="direct"} 7');
    expect(text).toContain('entangle_tunnel_bytes_total{direction="sent",path="direct"} 0');
    expect(text).toContain('entangle_tunnel_bytes_total{direction="received",path="relayed"} 0');
  });
});
