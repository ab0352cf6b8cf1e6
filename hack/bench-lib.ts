// Measurement primitives shared by the benchmarks (hack/bench.ts, hack/bench-rr.ts): loopback
// sockets, per-process CPU, request rate, first byte.
import { readFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { connect, type Server, type Socket } from "node:net";

export function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as { port: number }).port)));
}

export function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", noDelay: true, allowHalfOpen: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

export function waitForPort(port: number, timeoutMs = 60_000): Promise<void> {
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

/** utime + stime of processes, in seconds (/proc/PID/stat, clock ticks of 10 ms). */
export function cpuSeconds(procs: ChildProcess[] = []): number {
  let ticks = 0;
  for (const c of procs) {
    const stat = readFileSync(`/proc/${c.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

export interface RateOptions {
  /** replies in all, then stop */
  count: number;
  /** or stop then */
  maxMs?: number;
  /** sent once before the first request (a target's protocol selector) */
  prefix?: string;
}

/**
 * Requests per second: `conns` connections, each sending a 64-byte request and waiting for its
 * 64-byte reply before the next.
 */
export async function requestRate(port: number, conns: number, o: RateOptions): Promise<{ rate: number; done: number }> {
  const socks = await Promise.all(Array.from({ length: conns }, () => open(port)));
  const msg = Buffer.alloc(64, 2);
  let done = 0;
  const t0 = performance.now();
  const deadline = t0 + (o.maxMs ?? Infinity);
  await Promise.all(
    socks.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          let got = 0;
          s.once("error", reject);
          s.on("data", (d: Buffer) => {
            got += d.length;
            if (got < 64) return;
            got -= 64;
            done++;
            if (done >= o.count || performance.now() > deadline) return resolve();
            s.write(msg);
          });
          s.write(o.prefix === undefined ? msg : Buffer.concat([Buffer.from(o.prefix), msg]));
        }),
    ),
  );
  const rate = done / ((performance.now() - t0) / 1000);
  for (const s of socks) s.destroy();
  return { rate, done };
}

/** Round trips of 64-byte messages on one connection, one after the other, in ms (`prefix` as in RateOptions). */
export async function echo(port: number, n: number, prefix?: string): Promise<number[]> {
  return (await echoPhases(port, [n], prefix))[0];
}

/** As echo(), in phases on the same connection: `counts[i]` round trips in phase i. */
export async function echoPhases(port: number, counts: number[], prefix?: string): Promise<number[][]> {
  return (await echoStamped(port, counts, prefix)).map((phase) => phase.map(([, ms]) => ms));
}

/** As echoPhases(), each round trip as [its wall-clock start (ms since the epoch), its ms]. */
export async function echoStamped(port: number, counts: number[], prefix?: string): Promise<Array<Array<[number, number]>>> {
  const s = await open(port);
  const msg = Buffer.alloc(64, 1);
  const phases: Array<Array<[number, number]>> = [];
  if (prefix !== undefined) s.write(prefix);
  let pending: (() => void) | undefined;
  let got = 0;
  s.on("data", (d: Buffer) => {
    got += d.length;
    if (got >= 64) {
      got -= 64;
      pending?.();
    }
  });
  for (const n of counts) {
    const times: Array<[number, number]> = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise<void>((r) => {
        pending = r;
        s.write(msg);
      });
      times.push([performance.timeOrigin + t0, performance.now() - t0]);
    }
    phases.push(times);
  }
  s.destroy();
  return phases;
}

/**
 * Milliseconds from connect() to the first byte, for `n` connections one after the other. With
 * `send`, the client speaks first (sent at once, as HTTP does) and the first byte is the reply.
 */
export async function firstByte(port: number, n: number, send?: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await firstByteOnce(port, send);
    times.push(performance.now() - t0);
  }
  return times;
}

/** One connection that gets a first byte (rejects if it closes or fails first). */
export function firstByteOnce(port: number, send?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", noDelay: true });
    if (send !== undefined) s.write(send);
    s.once("data", () => (s.destroy(), resolve()));
    s.once("error", reject);
    s.once("close", () => reject(new Error("closed")));
  });
}

/** "K=V K2=V2" (a benchmark's BENCH_ENV_<LABEL>) -> { K: "V", K2: "V2" } */
export const envWords = (words = ""): Record<string, string> =>
  Object.fromEntries(
    words
      .split(" ")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
