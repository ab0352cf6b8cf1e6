// An unauthenticated flood of idle TCP connections must not keep members out (issue 15 #8).
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { killAll, runEntangle } from "../helpers/agents.ts";

const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
const FLOOD = Number(process.env.FLOOD ?? 2_000);

/**
 * Holds `count` idle connections from 127.0.0.2 (another source than the member's 127.0.0.1),
 * reopening each one the agent closes, until stopped: a persistent attacker, bounded in count.
 */
function flood(port: number, count: number): { stop: () => void; opened: () => number } {
  const sockets = new Set<Socket>();
  let opened = 0;
  let stopped = false;
  const open = () => {
    if (stopped) return;
    const s = connect({ host: "127.0.0.1", port, localAddress: "127.0.0.2" });
    opened++;
    sockets.add(s);
    s.on("error", () => {});
    // reopen after a pause, so a refused connection does not become a busy loop
    s.on("close", () => (sockets.delete(s), setTimeout(open, 200)));
  };
  for (let i = 0; i < count; i++) open();
  return {
    stop: () => {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
    opened: () => opened,
  };
}

afterEach(killAll);

describe("p2p port under a flood of idle connections", () => {
  it(`a new member authenticates within 5 s while ${FLOOD} idle connections are held`, async () => {
    const target = runEntangle(["agent", "expose", "--service", "s", "--target", "127.0.0.1:9", "--p2p-listen", "127.0.0.1:0"], env);
    const addr = (await target.waitMsg("agent started")).addrs as string[];
    const port = Number(addr[0].split("/tcp/")[1].split("/")[0]);
    const attack = flood(port, FLOOD);
    try {
      await new Promise((r) => setTimeout(r, 3_000)); // let the flood settle in
      const spawned = Date.now();
      const member = runEntangle(["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0", "--peer", addr[0]], env);
      // timed from the member's start: on this shared machine the flood (run by this very
      // process) also slows the member's Node start-up, which is not the p2p port's doing
      const started = (await member.waitMsg("agent started", 20_000)).time as number;
      const authenticated = (await member.waitMsg("member authenticated", 20_000)).time as number;
      console.log(
        `member authenticated ${authenticated - started} ms after its start (${Date.now() - spawned} ms after spawn) under ${FLOOD} idle connections (${attack.opened()} opened)`,
      );
      expect(authenticated - started).toBeLessThan(5_000);
    } finally {
      attack.stop();
    }
  }, 60_000);
});
