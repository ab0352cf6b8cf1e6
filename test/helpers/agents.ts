// Runs real `entangle` agent processes for the p2p suites and reads their JSON logs.
import "./offline.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, connect, type Server, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ENTANGLE = fileURLToPath(new URL("../../bin/entangle.js", import.meta.url));

export interface LogLine {
  msg: string;
  [k: string]: unknown;
}

export class AgentProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  readonly exited: Promise<number | null>;
  /** the process has exited and its stdout and stderr are closed */
  private readonly closed: Promise<void>;

  readonly child: ChildProcess;

  constructor(child: ChildProcess) {
    this.child = child;
    createInterface({ input: child.stderr! }).on("line", (text) => {
      this.stderr.push(text);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => (w.pred(line) ? (w.resolve(line), false) : true));
    });
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    this.closed = new Promise((resolve) => child.once("close", () => resolve()));
  }

  // An agent starts in about a second on an idle machine and in tens of seconds on two cores
  // shared with other test runs; a test's own timeout (60 s) still ends a wait that hangs.
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 45_000): Promise<LogLine> {
    const found = this.lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${why}${this.exitNote()}; last lines:\n${this.lastStderr()}`));
      };
      const timer = setTimeout(() => fail("timed out waiting for log line"), timeoutMs);
      const waiter = { pred, resolve: (l: LogLine) => (clearTimeout(timer), resolve(l)) };
      this.waiters.push(waiter);
      // 'close' comes after the agent's last stderr line: a line not seen by then never comes
      void this.closed.then(() => this.waiters.includes(waiter) && fail("the agent ended without that log line"));
    });
  }

  /** The end of stderr, for a failure's message: an agent that died shows more (an uncaught error's message and stack). */
  lastStderr(): string {
    const dead = this.child.exitCode !== null || this.child.signalCode !== null;
    return this.stderr.slice(dead ? -40 : -10).join("\n");
  }

  private exitNote(): string {
    if (this.child.exitCode !== null) return ` (the agent exited with code ${this.child.exitCode})`;
    if (this.child.signalCode !== null) return ` (the agent was killed by ${this.child.signalCode})`;
    return "";
  }

  waitMsg(msg: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor((l) => l.msg === msg, timeoutMs);
  }

  /** The agent's direct libp2p address (from its start-up log). */
  async p2pAddr(): Promise<string> {
    const l = await this.waitMsg("agent started");
    return (l.addrs as string[]).find((a) => !a.includes("p2p-circuit"))!;
  }

  async listenPort(): Promise<number> {
    const l = await this.waitMsg("accepting connections");
    return Number(String(l.listen).split(":").pop());
  }

  async healthPort(): Promise<number> {
    const l = await this.waitMsg("health endpoint listening");
    return Number(String(l.health).split(":").pop());
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

const running = new Set<AgentProcess>();

/** Starts `entangle ARGS...` (bin/entangle.js, or another entry such as the bundled agent's). */
export function runEntangle(args: string[], env: Record<string, string | undefined> = {}, entry = ENTANGLE): AgentProcess {
  const child = spawn(process.execPath, [entry, ...args], {
    env: { ...process.env, ENTANGLE_NETWORK_TOKEN: undefined, EDGEVPNTOKEN: undefined, ENTANGLE_LOG_LEVEL: "debug", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const p = new AgentProcess(child);
  running.add(p);
  void p.exited.then(() => running.delete(p));
  return p;
}

export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

/** Runs a short CLI command to completion. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [ENTANGLE, ...args], {
    env: { ...process.env, ENTANGLE_NETWORK_TOKEN: undefined, EDGEVPNTOKEN: undefined, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(input ?? "");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A TCP server on 127.0.0.1 with an ephemeral port. */
export async function tcpServer(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, onSocket);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { server, port: (server.address() as { port: number }).port };
}

/** A port free on `host` a moment ago (for an agent's fixed --p2p-listen or health port). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, host, () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

export function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends `payload` (optional), half-closes, and collects everything until EOF or error. */
export function exchange(port: number, payload?: Buffer, timeoutMs?: number): Promise<{ data: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    if (timeoutMs !== undefined) s.setTimeout(timeoutMs, () => (resolve({ data: Buffer.concat(chunks), error: "timeout" }), s.destroy()));
    s.on("data", (d) => chunks.push(d));
    s.once("connect", () => (payload === undefined ? s.end() : s.end(payload)));
    s.once("end", () => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks) });
    });
    s.once("error", (err: NodeJS.ErrnoException) => resolve({ data: Buffer.concat(chunks), error: err.code ?? err.message }));
  });
}

export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 15_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw last;
}

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}
