// A slow link between two agents (a veth pair limited to 16 Mbit/s by tbf; the kernel has no
// netem): bulk transfers that fill it must not get the connection declared dead (libp2p's
// heartbeat did that after ~14 s, resetting every tunnel on it), and a peer that goes silent
// must still be found dead (liveness.ts). Root only, like the chaos faults.
// root ns: connect agent (clients on 127.0.0.1), target on 10.N.1.1   ns A: expose agent on 10.N.1.2:4001
import { spawn, spawnSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { AgentProcess, ENTANGLE, killAll, runEntangle } from "../helpers/agents.ts";
import { outcome, transfer, VerifyingTarget } from "../helpers/chaos.ts";

const MiB = 1024 * 1024;
const root = process.getuid?.() === 0 && spawnSync("tc", ["-V"]).status === 0 && spawnSync("nft", ["--version"]).status === 0;
const id = randomBytes(2).toString("hex");
const net = `10.${randomInt(100, 200)}`;
const A = `ent-sl-${id}`;
const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
const SLOW = 90_000;

function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim()}`);
}

describe.skipIf(!root)("a slow link (16 Mbit/s) between the agents", () => {
  let target: VerifyingTarget;
  let exp: AgentProcess;
  let con: AgentProcess;
  let port = 0;

  beforeAll(async () => {
    const [outer, inner] = [`sl0-${id}`, `sl1-${id}`];
    sh("ip", "netns", "add", A);
    sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner);
    sh("ip", "link", "set", inner, "netns", A);
    sh("ip", "addr", "add", `${net}.1.1/24`, "dev", outer);
    sh("ip", "-n", A, "addr", "add", `${net}.1.2/24`, "dev", inner);
    for (const [ns, dev] of [
      [[], outer],
      [["-n", A], inner],
    ] as const) {
      sh("ip", ...ns, "link", "set", dev, "up");
      sh("tc", ...ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", "16mbit", "burst", "64kb", "latency", "400ms");
    }
    target = await new VerifyingTarget(64 * MiB, `${net}.1.1`).start();
    exp = new AgentProcess(
      spawn(
        "ip",
        [
          "netns",
          "exec",
          A,
          process.execPath,
          ENTANGLE,
          "agent",
          "expose",
          "--service",
          "slow",
          "--target",
          `${net}.1.1:${target.port}`,
          "--p2p-listen",
          `${net}.1.2:4001`,
        ],
        { env: { ...process.env, ENTANGLE_LOG_LEVEL: "debug", ...env }, stdio: ["ignore", "pipe", "pipe"] },
      ),
    );
    await exp.waitMsg("agent started", SLOW);
    con = runEntangle(["agent", "connect", "--service", "slow", "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0", "--peer", `${net}.1.2:4001`], env);
    port = await con.listenPort();
    await con.waitMsg("member authenticated", SLOW);
  }, 180_000);

  afterAll(async () => {
    await exp?.kill();
    await killAll();
    target?.close();
    spawnSync("ip", ["netns", "del", A]); // takes the veth pair with it
  });

  it("three 8 MiB downloads that fill it complete intact: the busy connection is not declared dead", async () => {
    const t0 = performance.now();
    const ts = Array.from({ length: 3 }, () => transfer(target, port, "down", 8 * MiB));
    const o = await outcome(ts, 150_000);
    expect(o.completed, o.summary).toBe(3);
    expect(con.lines.filter((l) => l.msg === "member disconnected")).toEqual([]);
    console.log(`[slow link] 3 x 8 MiB down over 16 Mbit/s in ${Math.round(performance.now() - t0)} ms`);
  }, 180_000);

  it("a peer that goes silent (every packet dropped) is found dead within the heartbeat's interval and timeout", async () => {
    const rules = `table inet silent {
      chain in { type filter hook input priority 0; meta l4proto tcp drop; }
      chain out { type filter hook output priority 0; meta l4proto tcp drop; }
    }`;
    const r = spawnSync("ip", ["netns", "exec", A, "nft", "-f", "-"], { input: rules, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const t0 = performance.now();
    try {
      await con.waitFor((l) => l.msg === "member disconnected", 40_000);
    } finally {
      spawnSync("ip", ["netns", "exec", A, "nft", "delete", "table", "inet", "silent"]);
    }
    console.log(`[slow link] silent peer found dead after ${Math.round(performance.now() - t0)} ms`);
  }, 60_000);
});
