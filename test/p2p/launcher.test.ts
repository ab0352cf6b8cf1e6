// `entangle` started by an older Node re-executes itself with the bundled Node 22: the agent
// must not outlive its launcher, whether the launcher gets SIGTERM or SIGKILL.
import { spawn, spawnSync } from "node:child_process";
import { afterAll, expect, it } from "vitest";
import { ENTANGLE } from "../helpers/agents.ts";

const oldNode = ["/usr/bin/node", "/usr/local/bin/node"].find(
  (p) => Number(spawnSync(p, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }).stdout) < 22,
);
const started: number[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function launch(): Promise<{ launcher: number; agent: number }> {
  const child = spawn(oldNode!, [ENTANGLE, "agent", "relay", "--p2p-listen", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "pipe"] });
  await new Promise<void>((resolve) => child.stderr.on("data", (d) => String(d).includes("agent started") && resolve()));
  const pgrep = spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).stdout.trim();
  const agent = Number(pgrep.split("\n")[0]);
  started.push(child.pid!, agent);
  return { launcher: child.pid!, agent };
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

afterAll(() => {
  for (const pid of started) if (alive(pid)) process.kill(pid, "SIGKILL");
});

it.runIf(oldNode)("SIGTERM to the launcher stops the agent", async () => {
  const { launcher, agent } = await launch();
  expect(agent).toBeGreaterThan(0);
  process.kill(launcher, "SIGTERM");
  expect(await gone(agent)).toBe(true);
});

it.runIf(oldNode)("SIGKILL of the launcher stops the agent (orphan check)", async () => {
  const { launcher, agent } = await launch();
  process.kill(launcher, "SIGKILL");
  expect(await gone(agent)).toBe(true);
});
