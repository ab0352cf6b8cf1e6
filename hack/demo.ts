// The demo behind `npm run demo`: everything on 127.0.0.1, cleaned up at the end, exit 0 only
// when every step worked. Progress goes to stdout as it happens.
//
// Tunnel: an HTTP service on "site A" is exposed by one agent and reached from "site B" through
// another; the two agents know only a relay's address, and the relay runs WITHOUT the token.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ENTANGLE = fileURLToPath(new URL("../bin/entangle.js", import.meta.url));
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

const t0 = Date.now();
function step(text: string): void {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${text}`);
}

interface Agent {
  child: ChildProcess;
  waitMsg(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function agent(name: string, args: string[], token?: string): Agent {
  const child = spawn(process.execPath, [ENTANGLE, ...args], {
    env: { ...process.env, ENTANGLE_NETWORK_TOKEN: token, EDGEVPNTOKEN: undefined },
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (text) => {
    tail.push(text);
    if (tail.length > 20) tail.shift();
    try {
      lines.push(JSON.parse(text));
    } catch {
      /* not a log line */
    }
  });
  return {
    child,
    async waitMsg(msg, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = lines.find((l) => l.msg === msg);
        if (found) return found;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${name}: no "${msg}" log line in time; last lines:\n${tail.join("\n")}`);
    },
  };
}

async function tunnelDemo(): Promise<void> {
  const tokenRun = spawnSync(process.execPath, [ENTANGLE, "token", "new"], { encoding: "utf8" });
  if (tokenRun.status !== 0) throw new Error(`token new failed: ${tokenRun.stderr}`);
  const token = tokenRun.stdout.trim();
  step(`network token created (fingerprint ${JSON.parse(spawnSync(process.execPath, [ENTANGLE, "token", "inspect", token], { encoding: "utf8" }).stdout).fingerprint})`);

  const web: Server = createServer((req, res) => res.end(`hello from site A (${req.method} ${req.url})\n`));
  await new Promise<void>((r) => web.listen(0, "127.0.0.1", () => r()));
  cleanups.push(() => new Promise<void>((r) => web.close(() => r())));
  const webPort = (web.address() as { port: number }).port;
  step(`site A: HTTP service on 127.0.0.1:${webPort}`);

  const relay = agent("relay", ["agent", "relay", "--p2p-listen", "127.0.0.1:0"]);
  const relayAddr = ((await relay.waitMsg("agent started")).addrs as string[])[0];
  step(`relay (no token) listening on ${relayAddr}`);

  const common = ["--p2p-listen", "127.0.0.1:0", "--peer", relayAddr, "--health-listen", "127.0.0.1:0"];
  const expose = agent("expose", ["agent", "expose", "--service", "demo-web", "--target", `127.0.0.1:${webPort}`, ...common], token);
  const connect = agent("connect", ["agent", "connect", "--service", "demo-web", "--listen", "127.0.0.1:0", ...common], token);
  await expose.waitMsg("agent started");
  step("site A: agent exposes service demo-web (knows only the relay)");
  const listen = String((await connect.waitMsg("accepting connections")).listen);
  step(`site B: agent connects service demo-web, listening on ${listen}`);
  const auth = await connect.waitMsg("member authenticated");
  step(`site B: provider authenticated (${auth.path} path, ${auth.encryption})`);

  const health = String((await connect.waitMsg("health endpoint listening")).health);
  const deadline = Date.now() + 20_000;
  let body = "";
  while (Date.now() < deadline) {
    try {
      const ready = await fetch(`http://${health}/readyz`);
      if (ready.ok) {
        body = await (await fetch(`http://${listen}/through-the-tunnel`, { signal: AbortSignal.timeout(5_000) })).text();
        break;
      }
    } catch {
      /* not ready yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!body.startsWith("hello from site A")) throw new Error("no answer through the tunnel within 20 s");
  step(`site B: GET http://${listen}/through-the-tunnel -> ${body.trim()}`);
}

async function main(): Promise<number> {
  try {
    await tunnelDemo();
    step("demo OK");
    return 0;
  } catch (err) {
    step(`demo FAILED: ${(err as Error).message}`);
    return 1;
  } finally {
    for (const c of children) c.kill("SIGTERM");
    for (const f of cleanups.reverse()) await f();
  }
}

process.exit(await main());
