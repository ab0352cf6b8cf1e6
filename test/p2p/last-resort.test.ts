// An unhandled promise rejection inside a running agent (here injected through NODE_OPTIONS'
// --import) is logged, and the agent keeps serving: Node's default would end the process, and
// with it every tunnel it carries.
import { afterEach, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { freePort, httpGet, killAll, runEntangle } from "../helpers/agents.ts";

afterEach(killAll);

const reject = `setTimeout(() => Promise.reject(new Error("injected rejection")), 2000)`;

describe("last resort", () => {
  it("an unhandled rejection is logged and the agent goes on", async () => {
    const health = await freePort();
    const agent = runEntangle(
      ["agent", "expose", "--service", "s", "--target", "127.0.0.1:9", "--p2p-listen", "127.0.0.1:0", "--health-listen", `127.0.0.1:${health}`],
      { ENTANGLE_NETWORK_TOKEN: newToken(), NODE_OPTIONS: `--import "data:text/javascript,${encodeURIComponent(reject)}"` },
    );
    await agent.waitMsg("agent started");
    const logged = await agent.waitFor((l) => l.msg.startsWith("unhandled rejection"));
    expect((logged.err as { message?: string }).message).toBe("injected rejection");
    // still alive and serving after it
    await new Promise((r) => setTimeout(r, 500));
    expect(agent.child.exitCode).toBeNull();
    expect((await httpGet(health, "/healthz")).status).toBe(200);
  });
});
