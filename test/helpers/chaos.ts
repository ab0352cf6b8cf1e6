// Verified traffic for the chaos suites: a target service and clients that check every byte
// as it arrives against what was sent (so a corrupted, reordered or foreign byte is caught at
// once, and a cut transfer is told apart from a silently truncated one).
import { createHash, randomBytes } from "node:crypto";
import { readSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";

/** One end's view of a byte stream it receives. */
export interface Received {
  bytes: number;
  /** a byte differed from the sent one at the same offset (corrupted, reordered, foreign) */
  corrupt: boolean;
  /** how the stream ended: "eof" (clean FIN), an error code, or undefined (still open) */
  end?: string;
}

export interface Transfer {
  kind: "up" | "down";
  id: string;
  size: number;
  /** the receiving end: the target for uploads, the client for downloads */
  rx: Received;
  /** the client's outcome: the target's sha256 reply matched (uploads) / all bytes arrived intact (downloads) */
  ok: boolean;
  done: Promise<void>;
}

/**
 * How a socket that emitted 'end' really ended: "eof" for the peer's FIN, else the error.
 * Node 22's libuv (1.51) reports a reset that arrives while data is still queued as a clean
 * EOF: after a short read with POLLHUP it skips the read that would fail (libuv#2319, changed
 * by libuv PR 4997, 2026). A client of this test would then call a cut transfer "truncated"
 * although the agent sent RST. One more read of our own tells them apart: 0 after a FIN,
 * ECONNRESET after a reset (the kernel keeps the error until it is read).
 */
export function endOf(s: Socket): string {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return "eof";
  try {
    return readSync(fd, Buffer.alloc(64 * 1024)) === 0 ? "eof" : "unread data after the end";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "EAGAIN" ? "eof" : (code ?? "eof");
  }
}

function tracker(expected: Buffer): { rx: Received; feed(d: Buffer): void } {
  const rx: Received = { bytes: 0, corrupt: false };
  return {
    rx,
    feed(d) {
      if (!rx.corrupt && (rx.bytes + d.length > expected.length || !d.equals(expected.subarray(rx.bytes, rx.bytes + d.length)))) rx.corrupt = true;
      rx.bytes += d.length;
    },
  };
}

/** Writes `data` at about `rate` bytes/s (by the clock, in chunks of at most 64 KiB, backpressure respected), then ends. */
function paced(s: Socket, data: Buffer, rate: number): void {
  const t0 = performance.now();
  let off = 0;
  const step = () => {
    if (s.destroyed) return;
    if (off >= data.length) return void s.end();
    const due = Math.min(data.length, Math.max(off + 4096, Math.floor(((performance.now() - t0) / 1000) * rate)));
    let ok = true;
    while (ok && off < due) {
      const part = data.subarray(off, Math.min(due, off + 64 * 1024));
      off += part.length;
      ok = s.write(part);
    }
    if (ok) setTimeout(step, 10);
    else s.once("drain", step);
  };
  step();
}

/**
 * The service behind the tunnel. First byte: 'E' echo; 'U' + 16-char id: receive the upload
 * registered under id (checked byte by byte), reply its sha256 at EOF; 'D' + id: send the
 * download registered under id at the pace given.
 */
export class VerifyingTarget {
  readonly payloads = new Map<string, Buffer>();
  readonly uploads = new Map<string, Received>();
  server!: Server;
  port = 0;

  readonly rate: number;
  readonly host: string;

  constructor(rate = 8 * 1024 * 1024, host = "127.0.0.1") {
    this.rate = rate;
    this.host = host;
  }

  async start(): Promise<this> {
    this.server = createServer({ allowHalfOpen: true }, (s) => this.serve(s));
    await new Promise<void>((r) => this.server.listen(0, this.host, () => r()));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  close(): void {
    this.server.close();
  }

  private serve(s: Socket): void {
    s.on("error", () => {});
    let head = Buffer.alloc(0);
    const onHead = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const op = String.fromCharCode(head[0]);
      if (op === "E") {
        s.off("data", onHead);
        if (head.length > 1) s.write(head.subarray(1));
        s.pipe(s);
        return;
      }
      if (head.length < 17) return;
      s.off("data", onHead);
      const id = head.subarray(1, 17).toString();
      const data = this.payloads.get(id);
      if (data === undefined) return void s.destroy();
      if (op === "U") {
        const t = tracker(data);
        this.uploads.set(id, t.rx);
        const h = createHash("sha256");
        const take = (c: Buffer) => (t.feed(c), h.update(c));
        if (head.length > 17) take(head.subarray(17));
        s.on("data", take);
        s.on("end", () => ((t.rx.end ??= endOf(s)), s.end(h.digest("hex"))));
        s.on("error", (err: NodeJS.ErrnoException) => (t.rx.end ??= err.code ?? err.message));
      } else if (op === "D") {
        paced(s, data, this.rate);
        s.resume();
      } else s.destroy();
    };
    s.on("data", onHead);
  }
}

function open(port: number, host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, allowHalfOpen: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Starts an upload or download of `size` random bytes through the tunnel at `port`. */
export function transfer(target: VerifyingTarget, port: number, kind: "up" | "down", size: number, host = "127.0.0.1"): Transfer {
  const id = randomBytes(8).toString("hex");
  const data = randomBytes(size);
  target.payloads.set(id, data);
  const tr = tracker(data);
  // an upload's receiving end is the target, which keeps its record; until it has one, ours
  const rx = () => (kind === "up" ? (target.uploads.get(id) ?? tr.rx) : tr.rx);
  const t: Transfer = {
    kind,
    id,
    size,
    get rx() {
      return rx();
    },
    ok: false,
    done: Promise.resolve(),
  };
  t.done = (async () => {
    let s: Socket;
    try {
      s = await open(port, host);
    } catch (err) {
      tr.rx.end = `connect: ${(err as NodeJS.ErrnoException).code}`;
      return;
    }
    await new Promise<void>((resolve) => {
      s.once("close", () => resolve());
      s.on("error", (err: NodeJS.ErrnoException) => {
        if (kind === "down") tr.rx.end ??= err.code ?? err.message;
      });
      if (kind === "up") {
        let reply = "";
        s.on("data", (d: Buffer) => (reply += d.toString()));
        s.on("end", () => ((t.ok = reply === createHash("sha256").update(data).digest("hex")), s.destroy()));
        s.write("U" + id);
        paced(s, data, target.rate);
      } else {
        s.on("data", (d: Buffer) => tr.feed(d));
        s.on("end", () => {
          tr.rx.end ??= endOf(s);
          t.ok = tr.rx.bytes === size && !tr.rx.corrupt;
          s.destroy();
        });
        s.end("D" + id);
      }
    });
  })();
  return t;
}

/** One echo connection of `size` random bytes; true when exactly those bytes came back. */
export function echo(port: number, size = 1024, host = "127.0.0.1", timeoutMs = 5_000): Promise<boolean> {
  const data = randomBytes(size);
  return new Promise((resolve) => {
    const s = connect({ port, host, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => (s.destroy(), resolve(false)), timeoutMs);
    s.on("data", (d: Buffer) => chunks.push(d));
    s.once("connect", () => s.end(Buffer.concat([Buffer.from("E"), data])));
    s.once("end", () => (clearTimeout(timer), s.destroy(), resolve(Buffer.concat(chunks).equals(data))));
    s.once("error", () => (clearTimeout(timer), resolve(false)));
  });
}

/** Milliseconds from `since` (performance.now()) until an echo connection works again. */
export async function recovery(port: number, since: number, host = "127.0.0.1", limitMs = 60_000): Promise<number> {
  while (performance.now() - since < limitMs) {
    if (await echo(port, 1024, host)) return Math.round(performance.now() - since);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no working connection ${limitMs} ms after the fault`);
}

/** Resolves once every transfer's receiving end has seen at least `bytes` (mid-transfer). */
export async function underway(transfers: Transfer[], bytes: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!transfers.every((t) => t.rx.bytes >= bytes)) {
    if (Date.now() > deadline) throw new Error(`transfers not underway: ${transfers.map((t) => `${t.kind} ${t.rx.bytes}`).join(", ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Outcome {
  /** the receiving end got every byte, intact, and a clean end */
  completed: number;
  /** cut, and the receiving end saw an error (a reset), not a clean end */
  reset: number;
  /** cut, and the receiving end saw a clean EOF after fewer bytes than were sent */
  truncated: Array<"up" | "down">;
  /** a byte differed from the one sent at its offset */
  corrupt: number;
  /** the receiving end never saw an end */
  hung: number;
  summary: string;
}

/** Classifies finished transfers by what their receiving end saw (waits for it to see an end). */
export async function outcome(transfers: Transfer[], waitMs = 60_000): Promise<Outcome> {
  await Promise.race([Promise.all(transfers.map((t) => t.done)), new Promise((r) => setTimeout(r, waitMs))]);
  const deadline = Date.now() + 10_000;
  while (transfers.some((t) => t.rx.end === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const o: Outcome = { completed: 0, reset: 0, truncated: [], corrupt: 0, hung: 0, summary: "" };
  for (const t of transfers) {
    if (t.rx.corrupt) o.corrupt++;
    else if (t.rx.end === undefined) o.hung++;
    else if (t.rx.end === "eof" && t.rx.bytes === t.size) o.completed++;
    else if (t.rx.end === "eof") o.truncated.push(t.kind);
    else o.reset++;
  }
  o.summary = transfers.map((t) => `${t.kind} ${t.rx.bytes}/${t.size} ${t.rx.end ?? "open"}${t.ok ? " ok" : ""}`).join("; ");
  return o;
}

/** After a fault: new transfers both ways and `echoes` echo connections all arrive intact. */
export async function allIntact(target: VerifyingTarget, port: number, host = "127.0.0.1", size = 1024 * 1024, echoes = 20): Promise<void> {
  const ts = [transfer(target, port, "up", size, host), transfer(target, port, "down", size, host)];
  const echoed = await Promise.all(Array.from({ length: echoes }, () => echo(port, 4096, host, 30_000)));
  const o = await outcome(ts);
  if (o.completed !== ts.length || ts.some((t) => !t.ok) || echoed.some((ok) => !ok))
    throw new Error(`after the fault: ${o.summary}; echoes ok ${echoed.filter(Boolean).length}/${echoes}`);
}
