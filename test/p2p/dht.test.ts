// DHT discovery on a private network (issue 9): a bootstrap node on loopback and two agents that
// know nothing but the token and that node. The connect agent finds the provider on the DHT
// (under a token-derived key) and tunnels to it; no --peer, no relay, no rendezvous anywhere.
import { createServer as createHttpServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { eventually, httpGet, killAll, runEntangle } from "../helpers/agents.ts";

let http: Server;
let httpPort: number;

beforeAll(async () => {
  http = createHttpServer((req, res) => res.end(`found ${req.url}`));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  httpPort = (http.address() as { port: number }).port;
});
afterAll(async () => {
  await killAll();
  http.close();
});

describe("DHT discovery on loopback", () => {
  it("with only the token and a bootstrap node, a connect agent finds the provider and tunnels to it", async () => {
    const boot = runEntangle(["agent", "bootstrap", "--p2p-listen", "127.0.0.1:0", "--bootstrap", "none"]);
    const bootstrap = await boot.p2pAddr();
    const env = { ENTANGLE_NETWORK_TOKEN: newToken(), ENTANGLE_BOOTSTRAP: bootstrap };
    const service = "dht-" + Math.random().toString(36).slice(2);
    const exp = runEntangle(["agent", "expose", "--service", service, "--target", `127.0.0.1:${httpPort}`, "--p2p-listen", "127.0.0.1:0"], env);
    const con = runEntangle(["agent", "connect", "--service", service, "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0"], env);
    const port = await con.listenPort();
    const found = await con.waitMsg("first provider found on the DHT", 60_000);
    expect(found.peer).toBe((await exp.waitMsg("agent started")).peerId);
    expect(await con.waitMsg("agent started")).toMatchObject({ dht: "client", bootstrap: "ENTANGLE_BOOTSTRAP" });
    await eventually(async () => expect((await httpGet(port, "/d")).body).toBe("found /d"), 30_000, 500);
    // the bootstrap node holds no token and never heard the service name
    expect(boot.stderr.join("\n")).not.toContain(service);
    expect(boot.lines.some((l) => l.msg === "member authenticated")).toBe(false);
  }, 120_000);

  it("a member dials the providers it finds, never the DHT's other peers (strangers)", async () => {
    const boot = runEntangle(["agent", "bootstrap", "--p2p-listen", "127.0.0.1:0", "--bootstrap", "none"]);
    const bootstrap = await boot.p2pAddr();
    // another DHT server, which the bootstrap node tells every member about: a stranger to them
    const stranger = runEntangle(["agent", "bootstrap", "--p2p-listen", "127.0.0.1:0", "--bootstrap", bootstrap]);
    const strangerId = (await stranger.waitMsg("agent started")).peerId;
    const env = { ENTANGLE_NETWORK_TOKEN: newToken(), ENTANGLE_BOOTSTRAP: bootstrap };
    const service = "dht-" + Math.random().toString(36).slice(2);
    const exp = runEntangle(["agent", "expose", "--service", service, "--target", `127.0.0.1:${httpPort}`, "--p2p-listen", "127.0.0.1:0"], env);
    const con = runEntangle(["agent", "connect", "--service", service, "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0"], env);
    const port = await con.listenPort();
    const expId = (await exp.waitMsg("agent started")).peerId;
    await eventually(async () => expect((await httpGet(port, "/s")).body).toBe("found /s"), 60_000, 500);
    // the DHT's queries went through the stranger (a DHT server) by now, several times
    await new Promise((r) => setTimeout(r, 5_000));
    const dialed = (p: typeof con) => p.lines.filter((l) => l.msg === "dialing a peer found").map((l) => `${String(l.via)} ${String(l.peer)}`);
    expect(dialed(con)).toContain(`dht ${String(expId)}`);
    for (const p of [con, exp]) expect(dialed(p).filter((d) => d.endsWith(String(strangerId)))).toEqual([]);
  }, 120_000);
});
