// Errors nobody handled inside a running agent, injected through NODE_OPTIONS' --import: an
// unhandled promise rejection is logged and the agent keeps serving (Node's default would end the
// process, and with it every tunnel it carries); an uncaught exception ends it, with its reason
// as the last log line and the termination message the controllers read (AgentFailed).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { terminationReason } from "../../lib/controller/agent-failure.ts";
import { newToken } from "../../lib/p2p/token.ts";
import { freePort, httpGet, killAll, runEntangle } from "../helpers/agents.ts";

afterEach(killAll);

const reject = `setTimeout(() => Promise.reject(new Error("injected rejection")), 2000)`;
const raise = `setTimeout(() => { throw new Error("injected exception") }, 2000)`;
const injected = (code: string) => `--import "data:text/javascript,${encodeURIComponent(code)}"`;
const expose = (health: number) => [
  "agent",
  "expose",
  "--service",
  "s",
  "--target",
  "127.0.0.1:9",
  "--p2p-listen",
  "127.0.0.1:0",
  "--health-listen",
  `127.0.0.1:${health}`,
];

describe("last resort", () => {
  it("an unhandled rejection is logged and the agent goes on", async () => {
    const health = await freePort();
    const agent = runEntangle(expose(health), { ENTANGLE_NETWORK_TOKEN: newToken(), NODE_OPTIONS: injected(reject) });
    await agent.waitMsg("agent started");
    const logged = await agent.waitFor((l) => l.msg.startsWith("unhandled rejection"));
    expect((logged.err as { message?: string }).message).toBe("injected rejection");
    // still alive and serving after it
    await new Promise((r) => setTimeout(r, 500));
    expect(agent.child.exitCode).toBeNull();
    expect((await httpGet(health, "/healthz")).status).toBe(200);
  });

  it("an uncaught exception ends the agent with its reason in the log's last line and the termination message", async () => {
    const dir = mkdtempSync(join(tmpdir(), "entangle-last-resort-"));
    const termination = join(dir, "termination-log");
    writeFileSync(termination, "");
    try {
      const agent = runEntangle(expose(await freePort()), {
        ENTANGLE_NETWORK_TOKEN: newToken(),
        NODE_OPTIONS: injected(raise),
        ENTANGLE_TERMINATION_LOG: termination,
      });
      await agent.waitMsg("agent started");
      await agent.waitFor((l) => l.msg.startsWith("uncaught exception"));
      expect(await agent.exited).toBe(1);
      expect(readFileSync(termination, "utf8")).toBe("entangle: internal error: injected exception");
      // what Kubernetes would take from the log instead (FallbackToLogsOnError)
      expect(terminationReason(agent.stderr.join("\n"))).toBe("uncaught exception (a bug: please report it); the agent exits: injected exception");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
