// A stranger that completes Noise but never proves membership is cut off after AUTH_DEADLINE_MS
// (issue 15, sibling of #8): before, it kept the connection until the 5-minute inactivity
// timeout, bounded only by maxConnections. Members keep theirs.
import { afterEach, describe, expect, it } from "vitest";
import { multiaddr } from "@multiformats/multiaddr";
import { createNode } from "../../lib/p2p/node.ts";
import { AUTH_DEADLINE_MS } from "../../lib/p2p/member-gate.ts";
import { newToken } from "../../lib/p2p/token.ts";
import { httpGet, killAll, runEntangle } from "../helpers/agents.ts";

afterEach(killAll);

describe("inbound connections without a membership proof", () => {
  it(`a stranger's connection is closed about ${AUTH_DEADLINE_MS / 1000} s after it opens; a member's stays`, async () => {
    const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
    const target = runEntangle(["agent", "expose", "--service", "s", "--target", "127.0.0.1:9", "--p2p-listen", "127.0.0.1:0"], env);
    const addr = await target.p2pAddr();
    const member = runEntangle(["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0", "--peer", addr], env);
    await member.waitMsg("member authenticated", 20_000);

    // a libp2p node of our own stack that speaks Noise and yamux but holds no token
    const stranger = await createNode({ listen: [], viaRelays: false, relayServer: false });
    try {
      const opened = Date.now();
      const conn = await stranger.dial(multiaddr(addr), { signal: AbortSignal.timeout(5_000) });
      expect(conn.status).toBe("open");
      const closed = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`still connected after ${AUTH_DEADLINE_MS + 10_000} ms`)), AUTH_DEADLINE_MS + 10_000);
        stranger.addEventListener("connection:close", () => (clearTimeout(timer), resolve(Date.now() - opened)), { once: true });
      });
      console.log(`stranger's connection closed ${closed} ms after it opened`);
      expect(closed).toBeGreaterThanOrEqual(AUTH_DEADLINE_MS - 500);
      expect(stranger.getConnections()).toHaveLength(0);
      await target.waitMsg(`closing inbound connection: no membership proof within ${AUTH_DEADLINE_MS / 1000} s`);
    } finally {
      await stranger.stop();
    }
    // the member connected before the stranger: past its own deadline, and never cut off
    expect(target.lines.filter((l) => l.msg === "member disconnected" || String(l.msg).startsWith("closing inbound"))).toHaveLength(1);
    expect(member.lines.some((l) => l.msg === "member disconnected")).toBe(false);
  }, 60_000);

  it("members that meet only through a token-less relay stay connected past the deadline", async () => {
    const relay = runEntangle(["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
    const addr = await relay.p2pAddr();
    const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
    const exp = runEntangle(["agent", "expose", "--service", "s", "--target", "127.0.0.1:9", "--peer", addr, "--no-direct"], env);
    const con = runEntangle(
      ["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0", "--peer", addr, "--no-direct", "--health-listen", "127.0.0.1:0"],
      env,
    );
    expect((await con.waitMsg("member authenticated", 20_000)).path).toBe("relayed");
    await exp.waitMsg("member authenticated", 20_000);
    await new Promise((r) => setTimeout(r, AUTH_DEADLINE_MS + 3_000));
    for (const agent of [relay, exp, con]) {
      expect(agent.lines.filter((l) => l.msg === "member disconnected" || String(l.msg).startsWith("closing inbound"))).toEqual([]);
    }
    // still an authenticated provider of s: ready
    expect(await httpGet(await con.healthPort(), "/readyz")).toMatchObject({ status: 200 });
  }, 60_000);
});
