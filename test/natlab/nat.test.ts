// Zero-config connectivity across NAT, in the NAT lab (issue 9): agents in sites behind NAT routers
// know nothing but the token and the lab's bootstrap list. They find each other through the DHT
// (provider records under token-derived keys), reach each other through the relay the DHT leads
// them to, punch a direct TCP connection where both NATs keep ports (a <-> b; lib/p2p/punch.ts),
// and carry bytes intact. Figures (time to first byte, to the punched connection, bytes by path)
// are printed.
//
//   natlab-a 192.168.10.2  (control link 10.254.1.2; the root namespace is 10.254.1.1)
//   natlab-b 192.168.20.2  (10.254.2.2)     natlab-c 192.168.30.2 (10.254.3.2), random port mapping
//   natlab-inet 100.128.0.6: a member with a public address (a member relay), loopback for its client port
//   natlab-b's router forwards 100.128.0.12:4101 to natlab-b:4101 (a port-forwarded member relay)
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { AgentProcess, ENTANGLE } from "../helpers/agents.ts";
import { allIntact, echo, outcome, recovery, transfer, underway, VerifyingTarget, type Outcome } from "../helpers/chaos.ts";

const skip = inject("natlabSkip");
const bootstrap = inject("natlabBootstrap");
const MiB = 1024 * 1024;
const running: AgentProcess[] = [];

const SITES = {
  a: { lan: "192.168.10.2", ctl: "10.254.1.2" },
  b: { lan: "192.168.20.2", ctl: "10.254.2.2" },
  c: { lan: "192.168.30.2", ctl: "10.254.3.2" },
  inet: { lan: "100.128.0.6", ctl: "127.0.0.1" },
};
type Site = keyof typeof SITES;
/** natlab-b's router's WAN address and the port it forwards to natlab-b (hack/natlab.sh) */
const FORWARD_WAN = "100.128.0.12";
const FORWARD_PORT = 4101;

/** An agent in a lab site with only the token and the lab's bootstrap list. */
function agentIn(site: Site, token: string, args: string[], p2pPort = 4001, env: Record<string, string> = {}): AgentProcess {
  const child = spawn(
    "ip",
    ["netns", "exec", `natlab-${site}`, process.execPath, ENTANGLE, ...args, "--p2p-listen", `${SITES[site].lan}:${p2pPort}`, "--bootstrap", bootstrap],
    {
      env: {
        ...process.env,
        ENTANGLE_NETWORK_TOKEN: token,
        EDGEVPNTOKEN: undefined,
        ENTANGLE_PEERS: undefined,
        ENTANGLE_LOG_LEVEL: "debug",
        DEBUG: process.env.NATLAB_DEBUG,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const p = new AgentProcess(child);
  running.push(p);
  return p;
}

function connectIn(site: Site, token: string, service: string, port: number, p2pPort = 4001): AgentProcess {
  return agentIn(
    site,
    token,
    ["agent", "connect", "--service", service, "--listen", `${SITES[site].ctl}:${port}`, "--health-listen", `${SITES[site].ctl}:${port + 100}`],
    p2pPort,
  );
}

/** One TCP connection through a tunnel to the VerifyingTarget's echo: each echo() is content-checked. */
async function echoConnection(
  host: string,
  port: number,
): Promise<{ echo(size: number, timeoutMs?: number): Promise<void>; close(): void; closed: () => string | undefined }> {
  const s: Socket = connect({ host, port, noDelay: true });
  let closed: string | undefined;
  s.on("error", (err: NodeJS.ErrnoException) => (closed ??= err.code ?? err.message));
  s.on("close", () => (closed ??= "closed"));
  await new Promise<void>((resolve, reject) => {
    s.once("connect", resolve);
    s.once("error", reject);
  });
  s.write("E");
  let got: Buffer[] = [];
  let have = 0;
  let want = 0;
  let wake: (() => void) | undefined;
  s.on("data", (d: Buffer) => {
    got.push(d);
    have += d.length;
    if (have >= want) wake?.();
  });
  return {
    closed: () => closed,
    close: () => s.destroy(),
    async echo(size, timeoutMs = 5_000) {
      const data = randomBytes(size);
      got = [];
      have = 0;
      want = size;
      const back = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`echo of ${size} bytes: ${have} back within ${timeoutMs} ms (${closed ?? "open"})`)), timeoutMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        s.once("close", () => reject(new Error(`echo of ${size} bytes: connection ${closed ?? "closed"} after ${have}`)));
      });
      s.write(data);
      await back;
      if (!Buffer.concat(got).equals(data)) throw new Error(`echo of ${size} bytes came back different`);
    },
  };
}

async function httpGet(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

async function metrics(site: Site, port: number): Promise<Record<string, number>> {
  const text = (await httpGet(port + 100, "/metrics", SITES[site].ctl)).body;
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(entangle_(?:tunnel_bytes_total|hole_punch_total|connections_total)\{[^}]*\}|entangle_provider_discovery_seconds) ([\d.]+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Bytes both ways by path, from an agent's metrics. */
function bytesByPath(m: Record<string, number>): { direct: number; relayed: number; share: number } {
  const bytes = (path: string) =>
    (m[`entangle_tunnel_bytes_total{direction="sent",path="${path}"}`] ?? 0) + (m[`entangle_tunnel_bytes_total{direction="received",path="${path}"}`] ?? 0);
  const direct = bytes("direct");
  const relayed = bytes("relayed");
  return { direct, relayed, share: direct + relayed === 0 ? 0 : Math.round((1000 * direct) / (direct + relayed)) / 10 };
}

const punches = (m: Record<string, number>) =>
  `${m['entangle_hole_punch_total{result="attempt"}'] ?? 0}/${m['entangle_hole_punch_total{result="success"}'] ?? 0}`;

/** What an agent logged last, for failure messages (debug lines about DHT queries left out). */
const tail = (p: AgentProcess) =>
  p.stderr
    .filter((l) => !/DHT query failed|announced on the DHT|dialing a peer found|dial failed/.test(l))
    .slice(-15)
    .join("\n");

function relay(cmd: "relay-stop" | "relay-start"): void {
  const r = spawnSync("bash", ["hack/natlab.sh", cmd], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`hack/natlab.sh ${cmd} failed (${r.status}):\n${r.stderr}`);
}

/** Milliseconds from `since` until an echo through the tunnel at host:port comes back intact. */
async function firstByte(host: string, port: number, since: number, limitMs: number): Promise<number> {
  while (performance.now() - since < limitMs) {
    if (await echo(port, 64, host, 3_000)) return Math.round(performance.now() - since);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no echo through ${host}:${port} within ${limitMs} ms`);
}

describe.skipIf(skip !== "")(`across NAT with only the token and the lab's bootstrap list${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const token = newToken();
  const service = "natlab-" + Math.random().toString(36).slice(2, 8);
  let target: VerifyingTarget;
  let expose: AgentProcess;
  let con: AgentProcess;
  let started = 0;

  beforeAll(async () => {
    target = await new VerifyingTarget(8 * MiB, "10.254.1.1").start();
  });

  afterAll(async () => {
    await Promise.all(running.map((p) => p.kill()));
    target?.close();
  });

  it("expose in natlab-a, connect in natlab-b: found on the DHT, bytes intact both ways, time to first byte measured", async () => {
    const t0 = performance.now();
    started = Date.now();
    expose = agentIn("a", token, ["agent", "expose", "--service", service, "--target", `10.254.1.1:${target.port}`, "--health-listen", `${SITES.a.ctl}:9200`]);
    con = connectIn("b", token, service, 9000);
    const ms = await firstByte(SITES.b.ctl, 9000, t0, 90_000);
    const found = await con.waitMsg("first provider found on the DHT", 90_000);
    // the provider was found by the DHT, through keys only members can compute
    expect(found.peer).toBe((await expose.waitMsg("agent started")).peerId);
    const auth = await con.waitMsg("member authenticated");

    const ts = [transfer(target, 9000, "up", 4 * MiB, SITES.b.ctl), transfer(target, 9000, "down", 4 * MiB, SITES.b.ctl)];
    const o = await outcome(ts);
    expect(o.completed, o.summary).toBe(2);
    expect(ts.every((t) => t.ok)).toBe(true);

    const m = await metrics("b", 9000);
    const { direct, relayed, share } = bytesByPath(m);
    expect(direct + relayed).toBeGreaterThan(8 * MiB);
    expect(m.entangle_provider_discovery_seconds).toBeCloseTo(Number(found.seconds), 2);
    // how each end found the other: one dialed the other after finding it by the DHT or the
    // relay's rendezvous (token-derived keys both); which one dials first is a race
    const conId = (await con.waitMsg("agent started")).peerId;
    const exposeAuth = await expose.waitFor((l) => l.msg === "member authenticated" && l.peer === conId);
    const ways = [auth.found, exposeAuth.found];
    for (const w of ways) expect(["dht", "rendezvous", "dialed us"]).toContain(w);
    expect(ways.filter((w) => w === "dht" || w === "rendezvous").length, ways.join(", ")).toBeGreaterThanOrEqual(1);
    process.stderr.write(
      `[natlab] a->b: first byte ${ms} ms after both agents started (provider found on the DHT after ${found.seconds} s; ` +
        `b found a by ${String(auth.found)}, first reached ${String(auth.path)}; a: ${String(exposeAuth.found)}, ${String(exposeAuth.path)}); ` +
        `${share}% of ${((direct + relayed) / MiB).toFixed(1)} MiB direct; hole punching (attempts/successes): b ${punches(m)}\n`,
    );
  });

  it("at least 90% of the bytes between natlab-a and natlab-b go direct after hole punching", async () => {
    // DCUtR over the relayed connection: both NATs keep ports, both sides dial from one port
    const exposeId = (await expose.waitMsg("agent started")).peerId;
    const punched = await con.waitFor((l) => l.msg === "direct connection to a peer reached through a relay (hole punched)" && l.peer === exposeId, 60_000);
    expect(punched.path).toBe("direct");
    // the punched connection joins the routers' public addresses, each at its dialing port
    expect(String(punched.addr)).toMatch(/^\/ip4\/100\.128\.0\.11\/tcp\/\d+\/p2p\//);
    const ts = [transfer(target, 9000, "up", 8 * MiB, SITES.b.ctl), transfer(target, 9000, "down", 8 * MiB, SITES.b.ctl)];
    const o = await outcome(ts);
    expect(o.completed, `${o.summary}\n--- connect (b):\n${tail(con)}\n--- expose (a):\n${tail(expose)}`).toBe(2);
    expect(ts.every((t) => t.ok)).toBe(true);
    const m = await metrics("b", 9000);
    const ma = await metrics("a", 9100);
    const { direct, relayed, share } = bytesByPath(m);
    const shareA = bytesByPath(ma).share;
    // every byte of the agents' lives, the first echo (through the relay, before the punch) included
    expect(share).toBeGreaterThanOrEqual(90);
    expect(shareA).toBeGreaterThanOrEqual(90);
    expect(m['entangle_hole_punch_total{result="success"}'] ?? 0).toBeGreaterThanOrEqual(1);
    process.stderr.write(
      `[natlab] a<->b hole punched ${Number(punched.time) - started} ms after the agents started (${String(punched.addr)}; b found a by ${String(punched.found)}); ` +
        `${share}% of b's ${((direct + relayed) / MiB).toFixed(1)} MiB direct, ${shareA}% of a's; hole punching (attempts/successes): b ${punches(m)}, a ${punches(ma)}\n`,
    );
  });

  it("natlab-c (random port mapping) connects too, through the relay", async () => {
    const t0 = performance.now();
    const con = connectIn("c", token, service, 9000);
    const ms = await firstByte(SITES.c.ctl, 9000, t0, 90_000);
    const auth = await con.waitMsg("member authenticated");
    const ts = [transfer(target, 9000, "up", 1 * MiB, SITES.c.ctl), transfer(target, 9000, "down", 1 * MiB, SITES.c.ctl)];
    const o = await outcome(ts);
    // on failure, what both ends logged last (it failed once, at load 13, after the first echo)
    expect(o.completed, `${o.summary}\n--- connect (c):\n${tail(con)}\n--- expose (a):\n${tail(expose)}`).toBe(2);
    const m = await metrics("c", 9000);
    expect(m['entangle_tunnel_bytes_total{direction="sent",path="relayed"}']).toBeGreaterThan(MiB);
    // random ports: no two observers agree on c's mapping, so no punch can succeed
    expect(m['entangle_hole_punch_total{result="success"}'] ?? 0).toBe(0);
    process.stderr.write(
      `[natlab] a->c: first byte ${ms} ms after the agent started, c found a by ${String(auth.found)}, reached ${String(auth.path)}; ` +
        `${bytesByPath(m).share}% direct; hole punching (attempts/successes): c ${punches(m)}\n`,
    );
  });

  it("an agent with another token in natlab-b learns nothing usable and reaches nothing", async () => {
    // same service name, same lab, same bootstrap nodes: only the token differs
    const stranger = connectIn("b", newToken(), service, 9001, 4002);
    await stranger.waitMsg("agent started", 90_000);
    // long enough for the members' own discovery (seconds, above) several times over
    await new Promise((r) => setTimeout(r, 20_000));
    expect(stranger.lines.filter((l) => l.msg === "first provider found on the DHT")).toEqual([]);
    expect(stranger.lines.filter((l) => l.msg === "member authenticated")).toEqual([]);
    expect((await httpGet(9101, "/readyz", SITES.b.ctl)).status).toBe(503);
    expect(await echo(9001, 64, SITES.b.ctl, 10_000)).toBe(false);
    const m = await metrics("b", 9001);
    expect(
      (m['entangle_tunnel_bytes_total{direction="sent",path="direct"}'] ?? 0) + (m['entangle_tunnel_bytes_total{direction="sent",path="relayed"}'] ?? 0),
    ).toBe(0);
    // and the provider never admitted it
    const strangerId = (await stranger.waitMsg("agent started")).peerId;
    expect(expose.lines.some((l) => l.msg === "member authenticated" && l.peer === strangerId)).toBe(false);
  });

  // last: it takes the lab's relay down (and brings a new one up)
  let cut: Outcome | undefined;
  it("killing the relay mid-transfer does not lose the direct tunnel (a-b), and the relayed one (a-c) comes back", async () => {
    const direct = [transfer(target, 9000, "up", 16 * MiB, SITES.b.ctl), transfer(target, 9000, "down", 16 * MiB, SITES.b.ctl)];
    const relayed = [transfer(target, 9000, "down", 16 * MiB, SITES.c.ctl)];
    await underway([...direct, ...relayed], 2 * MiB);
    const t0 = performance.now();
    relay("relay-stop");
    const od = await outcome(direct);
    expect(od.completed, `${od.summary}\n--- connect (b):\n${tail(con)}\n--- expose (a):\n${tail(expose)}`).toBe(2);
    expect(direct.every((t) => t.ok)).toBe(true);
    // the relayed transfer is cut with its circuit (a reset at the client), or complete when every
    // byte had passed the relay already (it buffers); never corrupted, never short with a clean end
    cut = await outcome(relayed);
    expect(cut.corrupt, cut.summary).toBe(0);
    expect(cut.truncated, cut.summary).toEqual([]);
    const down = Math.round(performance.now() - t0);
    // a new relay (a new identity, the same address): both members find it and c reaches a again
    relay("relay-start");
    const back = await recovery(9000, t0, SITES.c.ctl, 150_000);
    await allIntact(target, 9000, SITES.c.ctl, MiB, 5);
    expect(await echo(9000, 4096, SITES.b.ctl)).toBe(true);
    process.stderr.write(
      `[natlab] relay killed mid-transfer: a<->b direct transfers ${od.summary}; a->c relayed ${cut.summary} (${down} ms); ` +
        `a->c back ${back} ms after the kill, through the new relay\n`,
    );
  });

  // last again: with the lab's relay gone (the test above started a new one), a member with a
  // public address relays for the members whose NATs cannot be punched
  it("with the lab's relay down, natlab-c reaches natlab-a through a member relay; a stranger can neither reserve there nor connect through it", async () => {
    const exposeId = (await expose.waitMsg("agent started")).peerId;
    const member = connectIn("inet", token, service, 9000);
    const memberId = (await member.waitMsg("agent started", 90_000)).peerId;
    await member.waitMsg("publicly reachable: relaying for members (members only, no limits)", 60_000);
    // a finds the member relay under the token's relay key on the DHT and connects to it
    await expose.waitFor((l) => l.msg === "member authenticated" && l.peer === memberId, 120_000);
    relay("relay-start"); // a no-op when the test above brought it back; it may have failed before
    relay("relay-stop");
    try {
      const t0 = performance.now();
      const c = connectIn("c", token, service, 9002, 4003);
      // 1 of 8 runs saw no echo within 150 s: what the three logged last, when it happens again
      const ms = await firstByte(SITES.c.ctl, 9002, t0, 150_000).catch((err: Error) => {
        throw new Error(`${err.message}\n--- connect (c):\n${tail(c)}\n--- member relay:\n${tail(member)}\n--- expose (a):\n${tail(expose)}`);
      });
      const auth = await c.waitFor((l) => l.msg === "member authenticated" && l.peer === exposeId);
      expect(auth.path).toBe("relayed");
      expect(String(auth.addr)).toContain(`/p2p/${memberId}/p2p-circuit`);
      // bytes intact through it (echoes of 256 KiB)
      await allIntact(target, 9002, SITES.c.ctl, 256 * 1024, 4);
      const m = await metrics("c", 9002);
      expect(m['entangle_tunnel_bytes_total{direction="sent",path="relayed"}']).toBeGreaterThan(256 * 1024);
      // bulk, 4 MiB each way at once. It stalled in 3 of 7 runs at load 10-19 (the last 45-49 bytes of
      // both directions held, then every tunnel reset when libp2p's connection monitor aborted the
      // connection ~10 s later); hack/natlab-relay-loop.ts reproduced that with the old monitor put
      // back (1 of 31 at load 8-12) and never with liveness.ts (README: NAT and discovery)
      const t1 = performance.now();
      const ts = [transfer(target, 9002, "up", 4 * MiB, SITES.c.ctl), transfer(target, 9002, "down", 4 * MiB, SITES.c.ctl)];
      const o = await outcome(ts);
      expect(o.completed, `${o.summary}\n--- connect (c):\n${tail(c)}\n--- member relay:\n${tail(member)}\n--- expose (a):\n${tail(expose)}`).toBe(2);
      expect(ts.every((t) => t.ok)).toBe(true);
      const bulk = `8 MiB up+down intact at ${(8 / ((performance.now() - t1) / 1000)).toFixed(1)} MiB/s`;

      // a stranger in natlab-b asks the member relay for a reservation and for a circuit to a
      const probe = spawnSync(
        "ip",
        [
          "netns",
          "exec",
          "natlab-b",
          process.execPath,
          "test/natlab/relay-probe.ts",
          `/ip4/${SITES.inet.lan}/tcp/4001/p2p/${String(memberId)}`,
          String(exposeId),
        ],
        { encoding: "utf8", timeout: 90_000 },
      );
      expect(probe.status, probe.stderr).toBe(0);
      const seen = JSON.parse(probe.stdout) as Record<"silent" | "otherToken", { reserve: string; connect: string }>;
      // no proof: refused by the relay; another token: refused, or the connection closed first
      expect(seen.silent).toEqual({ reserve: "PERMISSION_DENIED", connect: "PERMISSION_DENIED" });
      expect(seen.otherToken.reserve).not.toBe("OK");
      expect(seen.otherToken.connect).not.toBe("OK");
      process.stderr.write(
        `[natlab] lab relay down: a->c through the member relay, first byte ${ms} ms after c started; ${bulk}; ` +
          `stranger at the member relay: ${JSON.stringify(seen)}\n`,
      );
    } finally {
      await member.kill(); // the test below needs another member relay
      relay("relay-start");
    }
  }, 420_000);

  // last: a member behind natlab-b's router, which forwards one port to it (the lab's only port
  // forward), learns nothing of it by itself (identify ignores observed TCP addresses); told
  // with --p2p-announce, it relays for members like one with a public address
  it("a port-forwarded member announced with --p2p-announce relays for members: natlab-c reaches natlab-a through it", async () => {
    const exposeId = (await expose.waitMsg("agent started")).peerId;
    relay("relay-stop");
    try {
      const fwd = agentIn(
        "b",
        token,
        ["agent", "connect", "--service", service, "--listen", `${SITES.b.ctl}:9004`, "--p2p-announce", `${FORWARD_WAN}:${FORWARD_PORT}`],
        FORWARD_PORT,
      );
      const fwdId = (await fwd.waitMsg("agent started", 90_000)).peerId;
      await fwd.waitMsg("publicly reachable: relaying for members (members only, no limits)", 60_000);
      await expose.waitFor((l) => l.msg === "member authenticated" && l.peer === fwdId, 120_000);
      const t0 = performance.now();
      const c = connectIn("c", token, service, 9003, 4004);
      const ms = await firstByte(SITES.c.ctl, 9003, t0, 150_000).catch((err: Error) => {
        throw new Error(`${err.message}\n--- connect (c):\n${tail(c)}\n--- forwarded member (b):\n${tail(fwd)}\n--- expose (a):\n${tail(expose)}`);
      });
      const auth = await c.waitFor((l) => l.msg === "member authenticated" && l.peer === exposeId);
      expect(auth.path).toBe("relayed");
      expect(String(auth.addr)).toContain(`/ip4/${FORWARD_WAN}/tcp/${FORWARD_PORT}/p2p/${fwdId}/p2p-circuit`);
      await allIntact(target, 9003, SITES.c.ctl, 256 * 1024, 4);
      process.stderr.write(`[natlab] port-forwarded member relay (b, ${FORWARD_WAN}:${FORWARD_PORT}): a->c first byte ${ms} ms after c started\n`);
    } finally {
      relay("relay-start");
    }
  }, 420_000);

  // last: a pair of its own (another token), whose hole punch waits (a test knob) so that a tunnel
  // is opened over the relay first; it moves to the punched connection and outlives the relay
  it("a tunnel opened while natlab-a and natlab-b are only relayed moves to the punched connection: echoes intact, its bytes then direct, the relay's death does not reset it", async () => {
    const token2 = newToken();
    const service2 = "natlab-move-" + Math.random().toString(36).slice(2, 8);
    const delay = { ENTANGLE_TEST_PUNCH_DELAY_MS: "20000" };
    // transfers paced at 1 MiB/s: they run across the punch and the move
    const slow = await new VerifyingTarget(MiB, "10.254.1.1").start();
    const t0 = performance.now();
    const ex = agentIn(
      "a",
      token2,
      ["agent", "expose", "--service", service2, "--target", `10.254.1.1:${slow.port}`, "--health-listen", `${SITES.a.ctl}:9205`],
      4005,
      delay,
    );
    const c2 = agentIn(
      "b",
      token2,
      ["agent", "connect", "--service", service2, "--listen", `${SITES.b.ctl}:9010`, "--health-listen", `${SITES.b.ctl}:9110`],
      4005,
      delay,
    );
    const exId = (await ex.waitMsg("agent started", 90_000)).peerId;
    await firstByte(SITES.b.ctl, 9010, t0, 120_000);
    const conn = await echoConnection(SITES.b.ctl, 9010);
    let echoes = 0;
    const echoOnce = async () => {
      await conn.echo(4096);
      echoes++;
    };
    await echoOnce();
    const bulk = [transfer(slow, 9010, "up", 32 * MiB, SITES.b.ctl), transfer(slow, 9010, "down", 32 * MiB, SITES.b.ctl)];
    await underway(bulk, 64 * 1024);
    const before = bytesByPath(await metrics("b", 9010));
    // the tunnel was opened over the relay: no direct connection yet
    expect(c2.lines.some((l) => l.msg === "direct connection to a peer reached through a relay (hole punched)")).toBe(false);
    expect(before.direct, JSON.stringify(before)).toBe(0);
    // echo on, every 100 ms, until the punch and the move
    let moved: Record<string, unknown> | undefined;
    const deadline = performance.now() + 90_000;
    while (moved === undefined && performance.now() < deadline) {
      await echoOnce();
      moved = c2.lines.find((l) => l.msg === "tunnel move" && l.peer === exId && l.outcome === "moved");
      await new Promise((r) => setTimeout(r, 100));
    }
    const punched = c2.lines.find((l) => l.msg === "direct connection to a peer reached through a relay (hole punched)" && l.peer === exId);
    expect(punched, `no hole punch\n--- connect (b):\n${tail(c2)}\n--- expose (a):\n${tail(ex)}`).toBeDefined();
    expect(moved, `not moved\n--- connect (b):\n${tail(c2)}\n--- expose (a):\n${tail(ex)}`).toBeDefined();
    // both transfers were under way over the relay: they moved too and come out whole
    const bulkOut = await outcome(bulk, 90_000);
    expect(bulkOut.completed, bulkOut.summary).toBe(2);
    expect(bulk.every((t) => t.ok)).toBe(true);
    const moves = c2.lines.filter((l) => l.msg === "tunnel move" && l.outcome === "moved").length;
    expect(moves).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < 20; i++) await echoOnce();
    const mid = bytesByPath(await metrics("b", 9010));
    // after the move, what this tunnel carries counts as direct, and nothing more goes relayed
    for (let i = 0; i < 20; i++) await conn.echo(64 * 1024).then(() => echoes++);
    const after = bytesByPath(await metrics("b", 9010));
    expect(after.direct - mid.direct).toBeGreaterThanOrEqual(2 * 20 * 64 * 1024);
    expect(after.relayed).toBe(mid.relayed);
    const afterA = bytesByPath(await metrics("a", 9105));
    expect(afterA.direct).toBeGreaterThan(2 * 20 * 64 * 1024);
    // the relay goes: the tunnel is on the direct connection, nothing resets it
    relay("relay-stop");
    try {
      const t1 = performance.now();
      while (performance.now() - t1 < 5_000) await echoOnce();
      expect(conn.closed()).toBeUndefined();
      process.stderr.write(
        `[natlab] tunnel opened over the relay (${before.relayed} B relayed, 0 direct), moved to the punched connection ` +
          `${Number(moved!.time) - Number(punched!.time)} ms after the punch (move took ${String(moved!.ms)} ms); ${echoes} echoes intact, ` +
          `${((after.direct - mid.direct) / 1024).toFixed(0)} KiB direct after it, relayed unchanged; survived the relay's death; ` +
          `${moves} tunnels moved, 32 MiB up and down at 1 MiB/s across the move: ${bulkOut.summary}; ` +
          `b: ${(after.relayed / MiB).toFixed(1)} MiB relayed, ${(after.direct / MiB).toFixed(1)} MiB direct\n`,
      );
    } finally {
      conn.close();
      slow.close();
      relay("relay-start");
    }
  }, 300_000);
});
