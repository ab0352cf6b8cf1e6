// Benchmark driver (see hack/bench.sh): the same workloads through each path, in one run.
//   bulk upload / download (BENCH_MIB MiB, median of 3), 64-byte echo round trip p50/p99,
//   new connection -> first byte p50/p99.
import { readFileSync } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, connect, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { newToken } from "../lib/p2p/token.ts";

const MIB = Number(process.env.BENCH_MIB ?? 256);
const ROUNDS = 3;
const ECHOES = Number(process.env.BENCH_ECHOES ?? 2000);
const CONNECTS = Number(process.env.BENCH_CONNECTS ?? 300);
const entangle = fileURLToPath(new URL("../bin/entangle.js", import.meta.url));
const children: ChildProcess[] = [];

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as { port: number }).port)));
}

// --- target servers -----------------------------------------------------------------------
const block = Buffer.alloc(1 << 20, 0x5a);
/** First byte says what to do: 'u' = sink (reply 'k' at EOF), 'd' = send MIB MiB, 'e' = echo, 'f' = reply one byte. */
const target = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  s.on("error", () => {});
  s.once("data", (first: Buffer) => {
    const op = String.fromCharCode(first[0]);
    if (op === "u") {
      s.on("data", () => {});
      s.on("end", () => s.end("k"));
    } else if (op === "d") {
      let left = MIB;
      const pump = () => {
        while (left > 0) {
          left--;
          if (!s.write(block)) return void s.once("drain", pump);
        }
        s.end();
      };
      pump();
    } else if (op === "e") {
      if (first.length > 1) s.write(first.subarray(1));
      s.pipe(s);
    }
  });
});
// new-connection latency: the server speaks first
const greeter = createServer({ noDelay: true }, (s) => {
  s.on("error", () => {});
  s.end("!");
});

// --- workloads ----------------------------------------------------------------------------
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", noDelay: true, allowHalfOpen: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

async function upload(port: number): Promise<number> {
  const s = await open(port);
  const t0 = performance.now();
  s.write("u");
  let left = MIB;
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.on("data", () => {});
    s.once("end", () => resolve());
    const pump = () => {
      while (left > 0) {
        left--;
        if (!s.write(block)) return void s.once("drain", pump);
      }
      s.end();
    };
    pump();
  });
  s.destroy();
  return MIB / ((performance.now() - t0) / 1000);
}

async function download(port: number): Promise<number> {
  const s = await open(port);
  const t0 = performance.now();
  let got = 0;
  s.write("d");
  await new Promise<void>((resolve, reject) => {
    s.on("data", (d: Buffer) => (got += d.length));
    s.once("end", () => resolve());
    s.once("error", reject);
  });
  s.destroy();
  if (got !== MIB * 1048576) throw new Error(`download got ${got} bytes`);
  return MIB / ((performance.now() - t0) / 1000);
}

async function echo(port: number): Promise<number[]> {
  const s = await open(port);
  const msg = Buffer.alloc(64, 1);
  const times: number[] = [];
  s.write("e");
  let pending: (() => void) | undefined;
  let got = 0;
  s.on("data", (d: Buffer) => {
    got += d.length;
    if (got >= 64) {
      got -= 64;
      pending?.();
    }
  });
  for (let i = 0; i < ECHOES; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      pending = r;
      s.write(msg);
    });
    times.push(performance.now() - t0);
  }
  s.destroy();
  return times;
}

async function firstByte(port: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1", noDelay: true });
      s.once("data", () => {
        times.push(performance.now() - t0);
        s.destroy();
        resolve();
      });
      s.once("error", reject);
    });
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

// --- paths --------------------------------------------------------------------------------
interface Path {
  name: string;
  data: number;
  greet: number;
}

function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect({ port, host: "127.0.0.1" });
      s.once("connect", () => (s.destroy(), resolve()));
      s.once("error", () => (Date.now() > deadline ? reject(new Error(`port ${port} never opened`)) : setTimeout(attempt, 100)));
    };
    attempt();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  const p = await listen(s);
  await new Promise((r) => s.close(r));
  return p;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"], env });
  children.push(c);
  return c;
}

async function sshPath(name: string, cipherArgs: string[], dataPort: number, greetPort: number): Promise<Path> {
  const [a, b] = [await freePort(), await freePort()];
  run("ssh", [
    "-N",
    "-p",
    process.env.BENCH_SSH_PORT!,
    "-i",
    process.env.BENCH_SSH_KEY!,
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
    ...cipherArgs,
    "-L",
    `127.0.0.1:${a}:127.0.0.1:${dataPort}`,
    "-L",
    `127.0.0.1:${b}:127.0.0.1:${greetPort}`,
    `${process.env.BENCH_SSH_USER ?? "root"}@127.0.0.1`,
  ]);
  await waitForPort(a);
  return { name, data: a, greet: b };
}

const agents: Array<{ role: string; child: ChildProcess }> = [];

/** Peak resident memory of a process (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function tunnelPath(dataPort: number, greetPort: number): Promise<Path> {
  const env = { ...process.env, ENTANGLE_NETWORK_TOKEN: newToken(), ENTANGLE_LOG_LEVEL: "warn" };
  const [p2pA, p2pB, a, b] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const node = process.execPath;
  agents.push({
    role: "expose",
    child: run(node, [entangle, "agent", "expose", "--service", "data", "--target", `127.0.0.1:${dataPort}`, "--p2p-listen", `127.0.0.1:${p2pA}`], env),
  });
  run(node, [entangle, "agent", "expose", "--service", "greet", "--target", `127.0.0.1:${greetPort}`, "--p2p-listen", `127.0.0.1:${p2pB}`], env);
  const common = ["--p2p-listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"];
  agents.push({
    role: "connect",
    child: run(node, [entangle, "agent", "connect", "--service", "data", "--listen", `127.0.0.1:${a}`, "--peer", `127.0.0.1:${p2pA}`, ...common], env),
  });
  run(node, [entangle, "agent", "connect", "--service", "greet", "--listen", `127.0.0.1:${b}`, "--peer", `127.0.0.1:${p2pB}`, ...common], env);
  await waitForPort(a);
  await waitForPort(b);
  // wait until the tunnels really carry bytes
  for (let i = 0; i < 100; i++) {
    try {
      await firstByteOnce(b);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { name: "entangle tunnel", data: a, greet: b };
}

function firstByteOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1" });
    s.once("data", () => (s.destroy(), resolve()));
    s.once("error", reject);
    s.once("close", () => reject(new Error("closed")));
  });
}

async function measure(p: Path) {
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    up.push(await upload(p.data));
    down.push(await download(p.data));
  }
  const rtt = await echo(p.data);
  const fb = await firstByte(p.greet);
  const r = { name: p.name, up: median(up), down: median(down), rtt50: pct(rtt, 50), rtt99: pct(rtt, 99), fb50: pct(fb, 50), fb99: pct(fb, 99) };
  process.stderr.write(
    `  ${r.name}: up ${r.up.toFixed(0)} MiB/s, down ${r.down.toFixed(0)} MiB/s, rtt p50 ${r.rtt50.toFixed(3)} ms, first byte p50 ${r.fb50.toFixed(2)} ms\n`,
  );
  return r;
}

async function main() {
  const dataPort = await listen(target);
  const greetPort = await listen(greeter);
  process.stderr.write(`benchmark: ${MIB} MiB x ${ROUNDS} each way, ${ECHOES} echoes, ${CONNECTS} new connections per path\n`);
  // each path is set up right before it is measured, so no path's processes sit idle (or
  // compete) while another is measured
  const paths: Array<() => Promise<Path>> = [async () => ({ name: "direct TCP", data: dataPort, greet: greetPort })];
  if (process.env.BENCH_SSH_PORT) {
    paths.push(() => sshPath("ssh -L (default cipher)", [], dataPort, greetPort));
    paths.push(() => sshPath("ssh -L aes128-gcm", ["-c", "aes128-gcm@openssh.com"], dataPort, greetPort));
  }
  paths.push(() => tunnelPath(dataPort, greetPort));
  const results = [];
  for (const setup of paths) results.push(await measure(await setup()));
  const ssh = results.find((r) => r.name.startsWith("ssh -L (default"));
  const fmt = (n: number, d = 0) => n.toFixed(d);
  const ratio = (a: number, b?: number) => (b === undefined ? "-" : `${(a / b).toFixed(2)}x`);
  console.log("");
  console.log("| path | upload MiB/s | download MiB/s | vs ssh default (up/down) | echo RTT p50 / p99 ms | new conn -> first byte p50 / p99 ms |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of results)
    console.log(
      `| ${r.name} | ${fmt(r.up)} | ${fmt(r.down)} | ${ratio(r.up, ssh?.up)} / ${ratio(r.down, ssh?.down)} | ${fmt(r.rtt50, 3)} / ${fmt(r.rtt99, 3)} | ${fmt(r.fb50, 2)} / ${fmt(r.fb99, 2)} |`,
    );
  const direct = results[0];
  const tun = results[results.length - 1];
  console.log(`\ntunnel vs direct: upload ${ratio(tun.up, direct.up)}, download ${ratio(tun.down, direct.down)}`);
  console.log(`tunnel agents' peak memory (RSS) over the whole run: ${agents.map((x) => `${x.role} ${peakRssMiB(x.child.pid!).toFixed(0)} MiB`).join(", ")}`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill();
    target.close();
    greeter.close();
    setTimeout(() => process.exit(), 500).unref();
  });
