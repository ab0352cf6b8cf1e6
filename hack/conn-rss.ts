// Does an agent's memory grow with the new connections it has carried? Rounds of back-to-back
// new connections through one tunnel, the agents' RSS and V8 heap after each round.
//   node hack/conn-rss.ts [ROUNDS=8] [PER_ROUND=2000]
// CONN_RSS_NODE_ARGS="..." adds Node options to the connect agent, whose stdout then goes to
// CONN_RSS_OUT (default /tmp/conn-rss-agent.out), e.g. "--trace-gc", or
// "--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR" with CONN_RSS_SNAPSHOTS=1 (a heap snapshot
// after each round, then CONN_RSS_SNAPSHOT_WAIT ms, 4000), or "--import ./hack/alloc-sample.ts"
// with ALLOC_DIR=DIR and CONN_RSS_SIGWINCH=1 (allocation sites over the first round).
// CONN_RSS_BIN=PATH/entangle.mjs runs another bundle (default dist/agent's).
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { newToken } from "../lib/p2p/token.ts";
import { freePort } from "../test/helpers/agents.ts";
import { firstByte, listen, median, waitForPort } from "./bench-lib.ts";

const [ROUNDS, PER_ROUND] = [Number(process.argv[2] ?? 8), Number(process.argv[3] ?? 2000)];
const root = fileURLToPath(new URL("..", import.meta.url));
const bin = process.env.CONN_RSS_BIN ?? `${root}dist/agent/entangle.mjs`;
const children: ChildProcess[] = [];
const greeter = createServer({ noDelay: true }, (s) => (s.on("error", () => {}), s.end("!")));

const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
async function heap(port: number) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = (name: string) => Number(new RegExp(`^entangle_process_${name} (\\S+)`, "m").exec(text)?.[1] ?? NaN) / 1048576;
  return `heap used ${m("nodejs_heap_size_used_bytes").toFixed(1)} / total ${m("nodejs_heap_size_total_bytes").toFixed(1)}, external ${m("nodejs_external_memory_bytes").toFixed(1)}`;
}

async function main() {
  const target = await listen(greeter);
  const env = { ...process.env, ENTANGLE_NETWORK_TOKEN: newToken(), ENTANGLE_LOG_LEVEL: "warn", ENTANGLE_BOOTSTRAP: "none" };
  const [p2p, local, hA, hB] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const run = (args: string[], node: string[] = []) => {
    const c = spawn(process.execPath, [...node, bin, ...args], {
      stdio: ["ignore", node.length ? openSync(process.env.CONN_RSS_OUT ?? "/tmp/conn-rss-agent.out", "w") : "ignore", "inherit"],
      env,
    });
    children.push(c);
    return c;
  };
  const expose = run([
    "agent",
    "expose",
    "--service",
    "greet",
    "--target",
    `127.0.0.1:${target}`,
    "--p2p-listen",
    `127.0.0.1:${p2p}`,
    "--health-listen",
    `127.0.0.1:${hA}`,
  ]);
  const conn = run(
    [
      "agent",
      "connect",
      "--service",
      "greet",
      "--listen",
      `127.0.0.1:${local}`,
      "--peer",
      `127.0.0.1:${p2p}`,
      "--p2p-listen",
      "127.0.0.1:0",
      "--health-listen",
      `127.0.0.1:${hB}`,
    ],
    (process.env.CONN_RSS_NODE_ARGS ?? "").split(" ").filter(Boolean),
  );
  console.log(`connect agent: pid ${conn.pid}`);
  await waitForPort(local);
  await new Promise((r) => setTimeout(r, 2000));
  for (let round = 0; round <= ROUNDS; round++) {
    if (process.env.CONN_RSS_SIGWINCH && (round === 1 || round === 2)) process.kill(conn.pid!, "SIGWINCH");
    const t = round === 0 ? [] : await firstByte(local, PER_ROUND);
    if (process.env.CONN_RSS_SNAPSHOTS) {
      process.kill(conn.pid!, "SIGUSR2");
      await new Promise((r) => setTimeout(r, Number(process.env.CONN_RSS_SNAPSHOT_WAIT ?? 4000)));
    }
    const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
    console.log(
      `after ${round * PER_ROUND} connections (load ${load}${t.length ? `, first byte p50 ${median(t).toFixed(2)} ms` : ""}):\n` +
        `  connect: RSS ${rss(conn.pid!).toFixed(0)} MiB, ${await heap(hB)}\n  expose:  RSS ${rss(expose.pid!).toFixed(0)} MiB, ${await heap(hA)}`,
    );
  }
}

main()
  .catch((err) => ((process.exitCode = 1), console.error(err)))
  .finally(() => {
    for (const c of children) c.kill();
    greeter.close();
  });
