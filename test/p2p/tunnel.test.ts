// Real agent processes over real sockets on 127.0.0.1.
import { createHash, randomBytes } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { type AgentProcess, dial, eventually, exchange, freePort, httpGet, killAll, runEntangle, tcpServer } from "../helpers/agents.ts";

const token = newToken();
const env = { ENTANGLE_NETWORK_TOKEN: token };
const local = ["--p2p-listen", "127.0.0.1:0"];

async function expose(service: string, targetPort: number, extra: string[] = [], e = env): Promise<AgentProcess> {
  const a = runEntangle(["agent", "expose", "--service", service, "--target", `127.0.0.1:${targetPort}`, ...local, ...extra], e);
  await a.waitMsg("agent started");
  return a;
}

async function connect(service: string, peers: string[], extra: string[] = [], e = env): Promise<{ agent: AgentProcess; port: number }> {
  const a = runEntangle(["agent", "connect", "--service", service, "--listen", "127.0.0.1:0", ...local, ...peers.flatMap((p) => ["--peer", p]), ...extra], e);
  return { agent: a, port: await a.listenPort() };
}

/** Echo server that sends back sha256 of everything it received, then closes. */
async function hashServer() {
  return tcpServer((s) => {
    const h = createHash("sha256");
    s.on("data", (d) => h.update(d));
    s.on("end", () => s.end(h.digest("hex")));
    s.on("error", () => {});
  });
}

/** Sends `size` bytes of a fixed random pattern, then closes. */
async function sourceServer(size: number) {
  const block = randomBytes(1 << 20);
  return tcpServer((s) => {
    // the download's client half-closes at once: a server that is not half-open would end its
    // writable side on that FIN and drop the rest (plain TCP does the same: not the tunnel's doing)
    s.allowHalfOpen = true;
    let left = size;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, block.length);
        left -= n;
        if (!s.write(block.subarray(0, n))) return void s.once("drain", pump);
      }
      s.end();
    };
    s.on("error", () => {});
    pump();
  }).then((srv) => ({ ...srv, expected: expectedHash(block, size) }));
}

function expectedHash(block: Buffer, size: number): string {
  const h = createHash("sha256");
  for (let left = size; left > 0; left -= block.length) h.update(block.subarray(0, Math.min(left, block.length)));
  return h.digest("hex");
}

afterEach(async () => {
  await killAll();
});

describe("tunnel", () => {
  it("carries HTTP and reports readiness and metrics", async () => {
    const http = createHttpServer((req, res) => res.end(`hello ${req.url}`));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    const port = (http.address() as { port: number }).port;
    try {
      const exp = await expose("web", port, ["--health-listen", "127.0.0.1:0"]);
      const con = await connect("web", [await exp.p2pAddr()], ["--health-listen", "127.0.0.1:0"]);
      const health = await con.agent.healthPort();
      await eventually(async () => expect((await httpGet(health, "/readyz")).status).toBe(200));
      expect((await httpGet(con.port, "/x?y=1")).body).toBe("hello /x?y=1");
      expect((await httpGet(await exp.healthPort(), "/readyz")).body).toMatch(/reachable/);
      const metrics = (await httpGet(health, "/metrics")).body;
      expect(metrics).toMatch(/entangle_tunnel_bytes_total\{direction="sent",path="direct"\} [1-9]/);
      expect(metrics).toMatch(/entangle_authenticated_peers 1/);
      expect((await httpGet(health, "/healthz")).status).toBe(200);
      const auth = await con.agent.waitMsg("member authenticated");
      expect(auth).toMatchObject({ encryption: "/entangle/noise-aes256gcm/1.0.0", path: "direct" });
    } finally {
      http.close();
    }
  });

  it("moves 64 MiB each way intact (sha256)", async () => {
    const size = 64 * 1024 * 1024;
    const up = await hashServer();
    const down = await sourceServer(size);
    const expUp = await expose("up", up.port);
    const expDown = await expose("down", down.port);
    const conUp = await connect("up", [await expUp.p2pAddr()]);
    const conDown = await connect("down", [await expDown.p2pAddr()]);
    const payload = randomBytes(size);
    const [u, d] = await Promise.all([exchange(conUp.port, payload), exchange(conDown.port)]);
    // a reset mid-transfer shows as the error, not just as a short length
    expect([u.error, d.error]).toEqual([undefined, undefined]);
    expect(u.data.toString()).toBe(createHash("sha256").update(payload).digest("hex"));
    expect(d.data.length).toBe(size);
    expect(createHash("sha256").update(d.data).digest("hex")).toBe(down.expected);
    up.server.close();
    down.server.close();
  }, 120_000);

  it("carries 1,000 concurrent connections, each verified", async () => {
    const srv = await hashServer();
    const exp = await expose("many", srv.port);
    const con = await connect("many", [await exp.p2pAddr()]);
    await con.agent.waitMsg("member authenticated");
    const payloads = Array.from({ length: 1000 }, (_, i) => randomBytes(1024 + (i % 7) * 513));
    const sockets = await Promise.all(payloads.map(() => dial(con.port)));
    // all 1,000 are open at once before any sends
    const results = await Promise.all(
      sockets.map(
        (s, i) =>
          new Promise<string>((resolve, reject) => {
            let out = "";
            s.on("data", (d) => (out += d));
            s.on("end", () => resolve(out));
            s.on("error", reject);
            s.end(payloads[i]);
          }),
      ),
    );
    results.forEach((r, i) => expect(r).toBe(createHash("sha256").update(payloads[i]).digest("hex")));
    srv.server.close();
  }, 120_000);

  it("propagates half-close: the server still answers after the client stops sending", async () => {
    const srv = await tcpServer((s) => {
      const chunks: Buffer[] = [];
      s.on("data", (d) => chunks.push(d));
      // reply only after EOF, in two writes with a pause, then close
      s.on("end", () => {
        s.write("got " + Buffer.concat(chunks).length);
        setTimeout(() => s.end(" bytes"), 200);
      });
    });
    const exp = await expose("half", srv.port);
    const con = await connect("half", [await exp.p2pAddr()]);
    const r = await exchange(con.port, Buffer.alloc(12345, 1));
    expect(r.error).toBeUndefined();
    expect(r.data.toString()).toBe("got 12345 bytes");
    srv.server.close();
  });

  it("propagates a reset from the target as a reset", async () => {
    const srv = await tcpServer((s) => s.once("data", () => s.resetAndDestroy()));
    const exp = await expose("rst", srv.port);
    const con = await connect("rst", [await exp.p2pAddr()]);
    await con.agent.waitMsg("member authenticated");
    const s = await dial(con.port);
    const err = await new Promise<string>((resolve) => {
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      s.on("end", () => resolve("clean end"));
      s.write("boom");
    });
    expect(err).toBe("ECONNRESET");
    srv.server.close();
  });

  it("refuses a peer holding another token, and says so in the log", async () => {
    const srv = await hashServer();
    const exp = await expose("secret", srv.port);
    const intruder = await connect("secret", [await exp.p2pAddr()], ["--health-listen", "127.0.0.1:0"], { ENTANGLE_NETWORK_TOKEN: newToken() });
    await exp.waitFor((l) => l.msg.startsWith("peer refused"));
    await intruder.agent.waitFor((l) => l.msg.startsWith("peer refused"));
    expect((await httpGet(await intruder.agent.healthPort(), "/readyz")).status).toBe(503);
    const r = await exchange(intruder.port, Buffer.from("let me in"));
    expect(r.data.length).toBe(0);
    expect(r.error).toBe("ECONNRESET");
    srv.server.close();
  }, 30_000);
});

async function metric(healthPort: number, name: string): Promise<number> {
  const text = (await httpGet(healthPort, "/metrics")).body;
  const line = text.split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{"));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

describe("failover", () => {
  it("uses a restarted provider again within 5 s", async () => {
    const srv = await hashServer();
    const p2pPort = await freePort();
    const listenHere = ["--p2p-listen", `127.0.0.1:${p2pPort}`];
    const first = runEntangle(["agent", "expose", "--service", "restart", "--target", `127.0.0.1:${srv.port}`, ...listenHere], env);
    await first.waitMsg("agent started");
    const con = await connect("restart", [`127.0.0.1:${p2pPort}`]);
    expect((await exchange(con.port, Buffer.from("a"))).data.toString()).toHaveLength(64);
    await first.kill();
    const second = runEntangle(["agent", "expose", "--service", "restart", "--target", `127.0.0.1:${srv.port}`, ...listenHere], env);
    await second.waitMsg("agent started");
    const restartedAt = Date.now();
    await eventually(async () => expect((await exchange(con.port, Buffer.from("b"))).data.toString()).toHaveLength(64), 10_000, 100);
    expect(Date.now() - restartedAt).toBeLessThan(5_000);
    srv.server.close();
  }, 30_000);

  it("balances across two providers and keeps serving when one dies mid-run", async () => {
    const srv = await hashServer();
    const a = await expose("ha", srv.port, ["--health-listen", "127.0.0.1:0"]);
    const b = await expose("ha", srv.port, ["--health-listen", "127.0.0.1:0"]);
    const con = await connect("ha", [await a.p2pAddr(), await b.p2pAddr()]);
    await eventually(async () => expect(con.agent.lines.filter((l) => l.msg === "member authenticated").length).toBe(2));
    const [healthA, healthB] = [await a.healthPort(), await b.healthPort()];
    const outcomes: Array<{ i: number; ok: boolean; error?: string; start: number; end: number }> = [];
    let killedAt = Infinity;
    let killed = Infinity;
    let killing: Promise<unknown> = Promise.resolve();
    const total = 120;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        // while the provider is being killed nobody starts a request, so "started after the kill" is exact
        await killing;
        const i = next++;
        if (i === 40) {
          // both providers served before the failure
          expect((await metric(healthA, "entangle_tunnel_streams_total")) > 0 && (await metric(healthB, "entangle_tunnel_streams_total")) > 0).toBe(true);
          killedAt = performance.now();
          killing = a.kill();
          await killing;
          killed = performance.now();
        }
        const payload = randomBytes(4096);
        const start = performance.now();
        const r = await exchange(con.port, payload, 15_000);
        outcomes.push({ i, ok: r.data.toString() === createHash("sha256").update(payload).digest("hex"), error: r.error, start, end: performance.now() });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(killedAt).toBeLessThan(Infinity);
    const show = (os: typeof outcomes) =>
      JSON.stringify(os.map((o) => ({ i: o.i, ok: o.ok, error: o.error, start: Math.round(o.start - killedAt), end: Math.round(o.end - killedAt) })));
    // everything finished before the kill worked, and everything started after it
    expect(
      outcomes.filter((o) => o.end < killedAt).every((o) => o.ok),
      show(outcomes),
    ).toBe(true);
    expect(
      outcomes.filter((o) => o.start > killed).every((o) => o.ok),
      show(outcomes),
    ).toBe(true);
    // only connections in flight at the kill (at most one per worker) may fail
    expect(outcomes.filter((o) => !o.ok).length, show(outcomes)).toBeLessThanOrEqual(8);
    srv.server.close();
  }, 120_000); // three agent starts and 120 exchanges: tens of seconds on two loaded cores
});
