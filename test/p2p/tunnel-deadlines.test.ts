// New tunnels make no AbortSignal.timeout() on either side (why: lib/p2p/deadline.ts). Both sides'
// per-tunnel paths are checked: ours (lib/p2p/tunnels.ts) and libp2p's inbound stream negotiation
// (patches/libp2p+*.patch, connection.js). Fails without either.
import { afterEach, describe, expect, it, vi } from "vitest";
import { createServer, connect, type Server } from "node:net";
import pino from "pino";
import { multiaddr } from "@multiformats/multiaddr";
import { Agent } from "../../lib/p2p/agent.ts";
import { newToken, parseToken } from "../../lib/p2p/token.ts";
import { freePort } from "../helpers/agents.ts";

const closers: Array<() => unknown> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const close of closers.splice(0).reverse()) await close();
});

function greeter(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => (s.on("error", () => {}), s.end("!")));
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ server, port: (server.address() as { port: number }).port })));
}

/** a new connection through the tunnel, until its first byte */
function firstByte(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1" });
    s.once("data", () => (s.destroy(), resolve()));
    s.once("error", reject);
  });
}

describe("new tunnels", () => {
  it("make no AbortSignal.timeout() on either side, and still work", async () => {
    const token = parseToken(newToken());
    const target = await greeter();
    closers.push(() => target.server.close());
    const log = pino({ level: "silent" });
    const expose = new Agent({
      role: { mode: "expose", service: "greet", target: { host: "127.0.0.1", port: target.port } },
      token,
      p2pListen: [multiaddr("/ip4/127.0.0.1/tcp/0")],
      peers: [],
      mdns: false,
      log,
    });
    await expose.start();
    closers.push(() => expose.stop());
    const listen = await freePort();
    const conn = new Agent({
      role: { mode: "connect", service: "greet", listen: { host: "127.0.0.1", port: listen } },
      token,
      p2pListen: [multiaddr("/ip4/127.0.0.1/tcp/0")],
      peers: expose.node.getMultiaddrs(),
      mdns: false,
      log,
    });
    await conn.start();
    closers.push(() => conn.stop());
    // the first tunnel waits for the provider to be found
    for (let i = 0; i < 100; i++) {
      if (
        await firstByte(listen).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const made: string[] = [];
    const timeout = AbortSignal.timeout.bind(AbortSignal);
    vi.spyOn(AbortSignal, "timeout").mockImplementation((ms) => (made.push(new Error().stack ?? ""), timeout(ms)));
    for (let i = 0; i < 20; i++) await firstByte(listen);
    // heartbeats and discovery may make one now and then; a tunnel's own paths must not
    const perTunnel = made.filter((stack) => /tunnels\.ts|onIncomingStream|newStream/.test(stack));
    expect(perTunnel).toEqual([]);
  });
});
