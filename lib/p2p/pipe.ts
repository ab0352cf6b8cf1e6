// Bridges one TCP socket and one libp2p stream, both ways, event-driven (no async iterators on
// the data path): backpressure in each direction (pause the reader while the writer is full),
// half-close propagated (TCP FIN <-> stream close of the writable end), resets propagated as
// resets (TCP RST / socket error <-> stream abort), and nothing buffered without bound.
//
// A tunnel may move to another stream (tunnel-move.ts): the socket's bytes then go to the new
// stream and the old one's writable end is closed (that FIN marks the handover); what the socket
// gets is read from the old stream to its end, then from the new one, so nothing is lost or
// reordered. Once moved, only the last stream's FIN is the remote's real end.
import type { OnReadOpts, Socket } from "node:net";
import type { Stream, StreamMessageEvent, StreamCloseEvent } from "@libp2p/interface";
import { chunksOf } from "./list-chunks.ts";

export interface PipeCounters {
  /** bytes read from the TCP socket and sent into the stream */
  sent(n: number): void;
  /** bytes received from the stream and written to the TCP socket */
  received(n: number): void;
}

export interface PipeResult {
  reset: boolean;
}

export interface PipeOptions {
  /**
   * Bytes already read from the stream before the pipe attached (what came with a tunnel's tag or
   * status byte): written to the socket first. The stream's remote end may also have half-closed
   * or gone away before then; the pipe reads that from the stream's state.
   */
  head?: Uint8Array[];
}

const finned = new WeakSet<Stream>();

/**
 * Call as soon as a stream is opened or accepted, when a pipe will attach to it later: the pipe
 * then knows whether a close before it attached was the remote's FIN (a clean end) or the stream's
 * connection going away (a cut: that closes a stream without FIN and without an error too).
 */
export function watchRemoteFin(stream: Stream): void {
  stream.addEventListener("remoteCloseWrite", () => finned.add(stream), { once: true });
}

/**
 * A tunnel stream's close() while a pipe carries it (see attach): one function for every stream,
 * not a closure per stream. A closure stored on each stream made V8 promote nearly everything a
 * tunnel allocated: with it, each new connection left ~9 KB in the old space until the next full
 * GC, and scavenges took 5-10 ms instead of ~1 (hack/conn-rss.ts with --trace-gc-nvp).
 */
async function closeAsReset(this: Stream): Promise<void> {
  this.abort(new Error("tunnel closed by its connection"));
}

const isAlive = (s: Stream) => s.status === "open" || s.status === "closing";

function resumeReads(s: Stream): void {
  if (s.readStatus === "paused") s.resume();
}

export function pipeSocketStream(socket: Socket, stream: Stream, counters: PipeCounters, options: PipeOptions = {}): Promise<PipeResult> {
  return new Pipe(socket, stream, counters, options).done;
}

/** A socket bridged to a stream, which another stream may take over (moveTo). */
export class Pipe {
  readonly done: Promise<PipeResult>;
  private resolve!: (r: PipeResult) => void;
  private readonly socket: Socket;
  /** where the socket's bytes go */
  private out: Stream;
  private outCounters: PipeCounters;
  /** where the socket's bytes come from */
  private inn: Stream;
  private innCounters: PipeCounters;
  /** the read source once `inn` has ended (a move) */
  private next: { stream: Stream; head: Uint8Array[]; counters: PipeCounters } | undefined;
  /** moves under way: `inn`'s end may be a handover, judged when they are answered */
  private holds = 0;
  private readonly streams = new Set<Stream>();
  private readonly remoteFin = new WeakSet<Stream>();
  private readonly ended = new WeakSet<Stream>();
  /** streams whose writable end we closed (the client's FIN, or a handover) */
  private readonly wroteEnd = new WeakSet<Stream>();
  private readonly closeWritable = new WeakMap<Stream, () => Promise<void>>();
  private innDone = false;
  private reset = false;
  private socketClosed = false;
  private settled = false;

  constructor(socket: Socket, stream: Stream, counters: PipeCounters, options: PipeOptions = {}) {
    this.socket = socket;
    this.out = this.inn = stream;
    this.outCounters = this.innCounters = counters;
    this.done = new Promise((r) => (this.resolve = r));
    // the client went away while its tunnel was being opened: its 'close' has passed
    if (socket.destroyed) {
      stream.abort(new Error("TCP connection closed"));
      this.settled = true;
      this.resolve({ reset: true });
      return;
    }
    const alive = isAlive(stream);
    this.attach(stream);
    // the client's FIN came before the pipe (a tunnel's early bytes: tunnels.ts EarlyBytes, which
    // closed the stream's writes then): its 'end' has passed
    if (socket.readableEnded) this.endWrites(stream);

    // TCP -> stream
    socket.on("data", (buf: Buffer) => {
      // the stream closed under us (its connection went away): send() would throw, and the
      // client's bytes can no longer arrive, so the client must see the cut
      if (this.out.writeStatus !== "writable") return void this.cut();
      this.outCounters.sent(buf.length);
      if (!this.out.send(buf)) socket.pause();
    });
    socket.on("end", () => this.endWrites(this.out)); // client half-closed: our FIN once queued bytes are out

    // stream -> TCP
    this.readFrom(stream, options.head ?? []);
    // (a stream closed both ways may still hold bytes while paused)
    socket.on("drain", () => resumeReads(this.inn));

    // errors and resets
    socket.on("error", (err: Error) => {
      this.reset = true;
      for (const s of this.streams) s.abort(err);
    });
    socket.on("close", () => {
      this.socketClosed = true;
      // a socket destroyed while the stream still runs (e.g. idle timeout) must not leak it
      for (const s of this.streams) if (isAlive(s) && s.writeStatus === "writable") s.abort(new Error("TCP connection closed"));
      this.finish();
    });
    if (!alive) {
      // its 'close' has passed: judged as there (a reset, or a connection gone, is a cut)
      this.streams.delete(stream);
      if (stream.status !== "closed" || !this.remoteFin.has(stream) || !socket.readableEnded) this.cut();
    }
    if (this.remoteFin.has(stream) && stream.readBufferLength === 0) this.onEnd(stream); // its 'end' has passed
    socket.resume();
  }

  /**
   * A move is under way: until release(), an end of the stream read now is not judged (it may be
   * the other side's handover mark, or its real FIN).
   */
  hold(): void {
    this.holds++;
  }

  /**
   * The move is over. Taken: the socket's bytes go to `stream` from now on and the old stream's
   * writable end closes (the handover mark); the socket gets the rest of the old stream, then
   * `head` and `stream`. Refused (`stream` undefined): nothing changed. Unsure (the request went
   * out and no answer came: the other side may have taken it, and its handover mark would look
   * like a real end on the old stream): the tunnel is cut.
   */
  release(stream?: Stream, counters?: PipeCounters, head: Uint8Array[] = [], unsure = false): void {
    this.holds = Math.max(0, this.holds - 1);
    if (unsure) return void this.cut();
    if (stream !== undefined) this.moveTo(stream, counters ?? this.outCounters, head);
    if (this.holds === 0 && this.ended.has(this.inn) && !this.innDone) this.onEnd(this.inn);
  }

  /** Both directions to `stream` (the exposing side answering a move, or release()). */
  moveTo(stream: Stream, counters: PipeCounters, head: Uint8Array[] = []): void {
    if (this.settled || this.socket.destroyed) return void stream.abort(new Error("tunnel gone"));
    this.attach(stream);
    if (stream.readStatus === "readable") stream.pause(); // until the old stream has ended
    // writes: the old stream's FIN is the handover mark; a client that had ended its writes
    // already (a FIN on the old stream) ends them on the new one at once
    const old = this.out;
    this.out = stream;
    this.outCounters = counters;
    if (this.socket.readableEnded) this.endWrites(stream);
    else {
      this.endWrites(old);
      this.socket.resume();
    }
    // reads: after the old stream's end (or now, when it was judged already)
    this.next = { stream, head, counters };
    if (this.innDone) {
      this.innDone = false;
      this.switchReads();
    } else if (this.holds === 0 && this.ended.has(this.inn)) this.onEnd(this.inn);
  }

  /** Whether the pipe is still carrying (a move makes sense). */
  get open(): boolean {
    return !this.settled && !this.socket.destroyed;
  }

  private attach(stream: Stream): void {
    this.streams.add(stream);
    const alive = isAlive(stream);
    if (finned.has(stream) || (alive && stream.remoteWriteStatus === "closed")) this.remoteFin.add(stream);
    stream.addEventListener("remoteCloseWrite", () => this.remoteFin.add(stream));
    // libp2p closes every stream of a connection gracefully when it closes the connection
    // (pruning, a relayed connection replaced by a direct one, the agent stopping): a FIN, which
    // would tell the far end's client that a transfer cut off mid-way is complete. Only the
    // client's FIN (or a handover) ends a tunnel's stream cleanly; any other close is a reset.
    this.closeWritable.set(stream, stream.close.bind(stream));
    stream.close = closeAsReset;
    stream.addEventListener("drain", () => {
      if (stream === this.out) this.socket.resume();
    });
    // Only the remote's FIN is a clean end. A remote reset also ends the readable side (just
    // before 'close' with the error), and a libp2p connection that drops (agent killed, network
    // cut) ends its streams without FIN and without an error: both must reach the client as RST,
    // or a transfer cut off mid-way would look complete.
    // The remote may have half-closed before the pipe attached (a client that sent its request and
    // FIN right behind the tag): its 'remoteCloseWrite' has passed then, and so has 'end' if
    // nothing of it is still queued in the stream. Over a fast target the whole exchange may even
    // be over (both FINs, the stream closed) before the connect side's pipe attaches.
    stream.addEventListener("end", () => this.onEnd(stream));
    stream.addEventListener("close", (evt: StreamCloseEvent) => {
      this.streams.delete(stream);
      // A clean close needs both FINs: the remote's, and ours, which we send only after the
      // client's (socket 'end') or at a handover. Anything else is a cut (a reset, or the
      // connection went away while the client was still sending). With both, 'end' may still be
      // on its way, after data buffered while paused: the socket is ended then. Never destroy an
      // ended socket here: that drops what is still queued in it, and the client sees a clean end
      // after fewer bytes. Ended both ways, it closes itself once the queue is flushed.
      if (evt.error !== undefined || !this.remoteFin.has(stream) || !this.wroteEnd.has(stream)) this.cut();
      this.finish();
    });
  }

  private readFrom(stream: Stream, head: Uint8Array[]): void {
    for (const chunk of head) {
      this.innCounters.received(chunk.byteLength);
      if (!this.socket.write(chunk) && stream.readStatus === "readable") stream.pause();
    }
    stream.addEventListener("message", (evt: StreamMessageEvent) => {
      const data = evt.data;
      let ok = true;
      if (data instanceof Uint8Array) {
        this.innCounters.received(data.byteLength);
        ok = this.socket.write(data);
      } else {
        this.innCounters.received(data.byteLength);
        const bufs = chunksOf(data);
        // a message in one piece (a small request or reply): written as it is, without the
        // list's iterator and the corked writev's bookkeeping (~0.5 KB of garbage per message)
        if (bufs.length === 1) ok = this.socket.write(bufs[0]);
        else {
          // one writev for the whole message instead of a syscall per chunk
          this.socket.cork();
          for (const chunk of bufs) ok = this.socket.write(chunk);
          this.socket.uncork();
        }
      }
      if (!ok) stream.pause();
    });
  }

  private switchReads(): void {
    const { stream, head, counters } = this.next!;
    this.next = undefined;
    this.inn = stream;
    this.innCounters = counters;
    this.readFrom(stream, head);
    if (!this.socket.writableNeedDrain) resumeReads(stream);
    if (this.ended.has(stream)) this.onEnd(stream);
  }

  private onEnd(stream: Stream): void {
    this.ended.add(stream);
    if (stream !== this.inn || this.innDone || this.socket.destroyed) return;
    if (this.holds > 0) return; // judged when the move is answered
    if (this.next !== undefined) return void this.switchReads();
    this.innDone = true;
    if (this.remoteFin.has(stream) && stream.status !== "reset") {
      if (!this.socket.writableEnded) this.socket.end();
      return;
    }
    this.cut();
  }

  private endWrites(stream: Stream): void {
    if (this.wroteEnd.has(stream)) return;
    this.wroteEnd.add(stream);
    if (stream.writeStatus !== "writable") return;
    const close = this.closeWritable.get(stream) ?? stream.close.bind(stream);
    close().catch((err: Error) => stream.abort(err));
  }

  /** The tunnel broke: the client gets RST (never a FIN that would make a partial transfer look complete). */
  private cut(): void {
    this.reset = true;
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
    // the far end must see the cut too, on every stream (one handed over from, one moved to)
    for (const s of this.streams) if (isAlive(s)) s.abort(new Error("tunnel cut"));
  }

  private finish(): void {
    if (this.settled || !this.socketClosed || this.streams.size > 0) return;
    this.settled = true;
    this.resolve({ reset: this.reset });
  }
}
const MIN_READ = 64 * 1024;
const MAX_READ = 1024 * 1024;
/** reads up to this size are copied out, and the read buffer is used again */
const COPY_READ = 16 * 1024;

/**
 * `onread` options for sockets we dial (the exposed target): Node reads 64 KiB at a time;
 * under bulk load bigger reads mean fewer yamux frames and 'data' events per byte (measured:
 * 2.30 -> 1.70 agent CPU-s per GiB). The size adapts, so idle or chatty connections keep small
 * buffers. A big read keeps its buffer (it may wait in a stream's queue) and the next read gets a
 * fresh one; a small read (a reply of a request/response service) is copied out and the buffer is
 * read into again, instead of a new 64 KiB buffer per message. Each read is re-emitted as 'data',
 * so the pipe is the same for every socket; pause() stops reading as usual.
 */
export function bigReads(socket: () => Socket): OnReadOpts {
  let size = MIN_READ;
  let buffer: Buffer | undefined;
  return {
    buffer: () => (buffer !== undefined && buffer.length === size ? buffer : (buffer = Buffer.allocUnsafe(size))),
    callback: (n: number, buf: Uint8Array) => {
      if (n === buf.length) size = Math.min(size * 2, MAX_READ);
      else if (n < buf.length / 4) size = Math.max(size / 2, MIN_READ);
      if (n <= COPY_READ) socket().emit("data", Buffer.from(buf.subarray(0, n)));
      else {
        buffer = undefined; // handed over: the next read gets a fresh buffer
        socket().emit("data", Buffer.from(buf.buffer, buf.byteOffset, n));
      }
      return true;
    },
  };
}
