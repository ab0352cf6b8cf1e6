// Agents that know only a relay's address find each other through its rendezvous; the relay
// holds no token. With --no-direct neither agent has a listener, so every byte crosses the relay.
import { createServer as createHttpServer, type Server } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { type AgentProcess, eventually, httpGet, killAll, runEntangle } from "../helpers/agents.ts";

let http: Server;
let httpPort: number;

beforeAll(async () => {
  http = createHttpServer((req, res) => res.end(`relayed ${req.url}`));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  httpPort = (http.address() as { port: number }).port;
});
afterAll(() => void http.close());
afterEach(async () => {
  await killAll();
});

async function startRelay(): Promise<{ relay: AgentProcess; addr: string }> {
  const relay = runEntangle(["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
  return { relay, addr: await relay.p2pAddr() };
}

describe("relay", () => {
  it.each([
    ["only through the relay (--no-direct)", ["--no-direct"]],
    ["when both also listen directly", ["--p2p-listen", "127.0.0.1:0"]],
  ])(
    "two agents that know only the relay meet and tunnel %s",
    async (_name, mode) => {
      const { relay, addr } = await startRelay();
      const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
      const service = "svc-" + Math.random().toString(36).slice(2);
      const exp = runEntangle(["agent", "expose", "--service", service, "--target", `127.0.0.1:${httpPort}`, "--peer", addr, ...mode], env);
      const con = runEntangle(
        ["agent", "connect", "--service", service, "--listen", "127.0.0.1:0", "--peer", addr, "--health-listen", "127.0.0.1:0", ...mode],
        env,
      );
      const port = await con.listenPort();
      const auth = await con.waitMsg("member authenticated", 20_000);
      if (mode[0] === "--no-direct") expect(auth.path).toBe("relayed");
      await exp.waitMsg("member authenticated");
      expect((await httpGet(port, "/hi")).body).toBe("relayed /hi");
      // bytes are counted by path: all through the relay, or all direct when a direct connection exists
      const metrics = (await httpGet(await con.healthPort(), "/metrics")).body;
      const [used, unused] = mode[0] === "--no-direct" ? ["relayed", "direct"] : ["direct", "relayed"];
      expect(metrics).toMatch(new RegExp(`entangle_tunnel_bytes_total\\{direction="sent",path="${used}"\\} [1-9]`));
      expect(metrics).toMatch(new RegExp(`entangle_tunnel_bytes_total\\{direction="sent",path="${unused}"\\} 0\\n`));
      // the relay never proved membership with anyone and never saw the service name
      expect(relay.lines.some((l) => l.msg === "member authenticated")).toBe(false);
      expect(relay.stderr.join("\n")).not.toContain(service);
    },
    40_000,
  );

  it("a token-embedded relay is dialed without --peer", async () => {
    const { addr } = await startRelay();
    const port = Number(addr.split("/tcp/")[1].split("/")[0]);
    const env = { ENTANGLE_NETWORK_TOKEN: newToken([`127.0.0.1:${port}`]) };
    runEntangle(["agent", "expose", "--service", "emb", "--target", `127.0.0.1:${httpPort}`, "--no-direct"], env);
    const con = runEntangle(["agent", "connect", "--service", "emb", "--listen", "127.0.0.1:0", "--no-direct"], env);
    const listen = await con.listenPort();
    await eventually(async () => expect((await httpGet(listen, "/e")).body).toBe("relayed /e"), 20_000, 500);
  }, 40_000);
});
