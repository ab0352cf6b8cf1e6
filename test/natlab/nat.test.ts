// Zero-config connectivity across NAT, in the NAT lab (issue 9): agents in sites behind NAT routers
// know nothing but the token and the lab's bootstrap list. They find each other through the DHT
// (provider records under token-derived keys), reach each other through the relay the DHT leads
// them to, and carry bytes intact. Figures (time to first byte, bytes by path) are printed.
//
//   natlab-a 192.168.10.2  (control link 10.254.1.2; the root namespace is 10.254.1.1)
//   natlab-b 192.168.20.2  (10.254.2.2)     natlab-c 192.168.30.2 (10.254.3.2), random port mapping
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { AgentProcess, ENTANGLE } from "../helpers/agents.ts";
import { echo, outcome, transfer, VerifyingTarget } from "../helpers/chaos.ts";

const skip = inject("natlabSkip");
const bootstrap = inject("natlabBootstrap");
const MiB = 1024 * 1024;
const running: AgentProcess[] = [];

const SITES = { a: { lan: "192.168.10.2", ctl: "10.254.1.2" }, b: { lan: "192.168.20.2", ctl: "10.254.2.2" }, c: { lan: "192.168.30.2", ctl: "10.254.3.2" } };
type Site = keyof typeof SITES;

/** An agent in a lab site with only the token and the lab's bootstrap list. */
function agentIn(site: Site, token: string, args: string[], p2pPort = 4001): AgentProcess {
  const child = spawn(
    "ip",
    ["netns", "exec", `natlab-${site}`, process.execPath, ENTANGLE, ...args, "--p2p-listen", `${SITES[site].lan}:${p2pPort}`, "--bootstrap", bootstrap],
    {
      env: { ...process.env, ENTANGLE_NETWORK_TOKEN: token, EDGEVPNTOKEN: undefined, ENTANGLE_PEERS: undefined, ENTANGLE_LOG_LEVEL: "debug" },
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

  beforeAll(async () => {
    target = await new VerifyingTarget(8 * MiB, "10.254.1.1").start();
  });

  afterAll(async () => {
    await Promise.all(running.map((p) => p.kill()));
    target?.close();
  });

  it("expose in natlab-a, connect in natlab-b: found on the DHT, bytes intact both ways, time to first byte measured", async () => {
    const t0 = performance.now();
    expose = agentIn("a", token, ["agent", "expose", "--service", service, "--target", `10.254.1.1:${target.port}`]);
    const con = connectIn("b", token, service, 9000);
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
    const bytes = (path: string) =>
      (m[`entangle_tunnel_bytes_total{direction="sent",path="${path}"}`] ?? 0) + (m[`entangle_tunnel_bytes_total{direction="received",path="${path}"}`] ?? 0);
    const direct = bytes("direct");
    const relayed = bytes("relayed");
    expect(direct + relayed).toBeGreaterThan(8 * MiB);
    expect(m.entangle_provider_discovery_seconds).toBeCloseTo(Number(found.seconds), 2);
    const share = Math.round((1000 * direct) / (direct + relayed)) / 10;
    process.stderr.write(
      `[natlab] a->b: first byte ${ms} ms after both agents started (provider found on the DHT after ${found.seconds} s, ` +
        `member reached ${auth.path}); ${share}% of ${((direct + relayed) / MiB).toFixed(1)} MiB direct; ` +
        `hole punching: ${m['entangle_hole_punch_total{result="attempt"}'] ?? 0} attempts, ${m['entangle_hole_punch_total{result="success"}'] ?? 0} successes\n`,
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
    const tail = (p: AgentProcess) => p.stderr.slice(-12).join("\n");
    expect(o.completed, `${o.summary}\n--- connect (c):\n${tail(con)}\n--- expose (a):\n${tail(expose)}`).toBe(2);
    const m = await metrics("c", 9000);
    expect(m['entangle_tunnel_bytes_total{direction="sent",path="relayed"}']).toBeGreaterThan(MiB);
    process.stderr.write(`[natlab] a->c: first byte ${ms} ms after the agent started, member reached ${auth.path}\n`);
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

  // Not yet: TCP hole punching. DCUtR needs each side's public address (router IP and mapped
  // port) confirmed, and both sides to dial from their listening port (SO_REUSEPORT on the
  // outgoing socket) so the routers' mappings match; @libp2p/tcp dials from an ephemeral port and
  // AutoNAT cannot confirm an address behind a NAT that drops unsolicited SYNs, so the members stay
  // on the relay. See README "NAT and discovery".
  it.todo("at least 90% of the bytes between natlab-a and natlab-b go direct after hole punching");
});
