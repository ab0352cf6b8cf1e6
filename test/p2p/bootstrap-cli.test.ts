// The DHT bootstrap list at the process level (issue 9): with ENTANGLE_FORBID_PUBLIC_BOOTSTRAP set
// (as for every test), an agent that would fall back on the public libp2p bootstrap peers exits 2
// before it dials anything; bad --bootstrap values exit 2 with one line naming the flag.
import { describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { runCli, runEntangle } from "../helpers/agents.ts";

const token = newToken();
const connect = ["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0"];

describe("--bootstrap at the command line", () => {
  it.each([
    [
      "no --bootstrap, no ENTANGLE_BOOTSTRAP: the public list, forbidden here",
      [],
      { ENTANGLE_BOOTSTRAP: undefined },
      /ENTANGLE_FORBID_PUBLIC_BOOTSTRAP is set/,
    ],
    ["an empty ENTANGLE_BOOTSTRAP is no list either", [], { ENTANGLE_BOOTSTRAP: " , " }, /ENTANGLE_FORBID_PUBLIC_BOOTSTRAP is set/],
    [
      "none mixed with an address",
      ["--bootstrap", "none", "--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"],
      {},
      /--bootstrap: "none" turns the DHT off/,
    ],
    ["an address without a peer id", ["--bootstrap", "127.0.0.1:4001"], {}, /--bootstrap: "127\.0\.0\.1:4001" names no peer id/],
  ])("%s -> exit 2 with one line", async (_what, flags, env, message) => {
    const r = await runCli([...connect, ...flags], { ENTANGLE_NETWORK_TOKEN: token, ...env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^entangle: /);
    expect(r.stderr).toMatch(message);
  });

  it("agent bootstrap: no token, --bootstrap none (the first node knows nobody), and still a DHT server", async () => {
    const node = runEntangle(["agent", "bootstrap", "--p2p-listen", "127.0.0.1:0", "--bootstrap", "none"]);
    try {
      const started = await node.waitMsg("agent started", 30_000);
      expect(started).toMatchObject({ mode: "bootstrap", dht: "server", bootstrap: "none" });
    } finally {
      await node.kill();
    }
  });
});
