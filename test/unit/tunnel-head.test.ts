// The tunnel's small reads and ids on a new connection's path (lib/p2p/tunnels.ts): readHead with
// a plain timer instead of an AbortSignal, and tunnel ids (tunnel-move.ts) cut from a pool of random bytes.
import { describe, expect, it } from "vitest";
import { readHead } from "../../lib/p2p/tunnels.ts";
import { newTunnelId, TUNNEL_ID_BYTES } from "../../lib/p2p/tunnel-move.ts";
import { pairsClosedAfterEach } from "../helpers/streams.ts";

const pair = pairsClosedAfterEach();

describe("readHead with a timeout in ms", () => {
  it("gives the first bytes and what came with them", async () => {
    const { outbound, inbound } = await pair();
    const got = readHead(inbound, 3, 50);
    outbound.send(Uint8Array.of(1, 2));
    outbound.send(Uint8Array.of(3, 4, 5));
    const { head, rest } = await got;
    expect([...head]).toEqual([1, 2, 3]);
    expect(rest.map((r) => [...r])).toEqual([[4, 5]]);
  });

  it("fails once the time is up", async () => {
    const { outbound, inbound } = await pair();
    outbound.send(Uint8Array.of(1));
    const started = performance.now();
    await expect(readHead(inbound, 2, 30)).rejects.toThrow(/no 2 bytes within 30 ms/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it("still takes an AbortSignal", async () => {
    const { inbound } = await pair();
    const ac = new AbortController();
    const got = readHead(inbound, 1, ac.signal);
    ac.abort(new Error("gave up"));
    await expect(got).rejects.toThrow("gave up");
  });
});

describe("tunnel ids", () => {
  it("are TUNNEL_ID_BYTES long, own copies, and all different across pool refills", () => {
    const seen = new Set<string>();
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) {
      const id = newTunnelId();
      expect(id.byteLength).toBe(TUNNEL_ID_BYTES);
      ids.push(id);
      seen.add(Buffer.from(id).toString("hex"));
    }
    expect(seen.size).toBe(1000);
    // later refills of the pool do not change ids already handed out
    expect(ids.map((id) => Buffer.from(id).toString("hex"))).toEqual([...seen]);
  });
});
