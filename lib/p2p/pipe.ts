// Bridges one TCP socket and one libp2p stream, both ways, event-driven (no async iterators on
// the data path): backpressure in each direction (pause the reader while the writer is full),
// half-close propagated (TCP FIN <-> stream close of the writable end), resets propagated as
// resets (TCP RST / socket error <-> stream abort), and nothing buffered without bound.
import type { OnReadOpts, Socket } from "node:net";
import type { Stream, StreamMessageEvent, StreamCloseEvent } from "@libp2p/interface";

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

export function pipeSocketStream(socket: Socket, stream: Stream, counters: PipeCounters, options: PipeOptions = {}): Promise<PipeResult> {
  return new Promise((resolve) => {
    // the client went away while its tunnel was being opened: its 'close' has passed
    if (socket.destroyed) {
      stream.abort(new Error("TCP connection closed"));
      return resolve({ reset: true });
    }
    let settled = false;
    let socketClosed = false;
    let streamClosed = false;
    let reset = false;
    const finish = () => {
      if (settled || !socketClosed || !streamClosed) return;
      settled = true;
      resolve({ reset });
    };
    /** The tunnel broke: the client gets RST (never a FIN that would make a partial transfer look complete). */
    const cut = () => {
      reset = true;
      if (!socket.destroyed) socket.resetAndDestroy();
    };

    // libp2p closes every stream of a connection gracefully when it closes the connection
    // (pruning, a relayed connection replaced by a direct one, the agent stopping): a FIN, which
    // would tell the far end's client that a transfer cut off mid-way is complete. Only the
    // client's FIN ends a tunnel cleanly; any other close is a reset.
    const closeWritable = stream.close.bind(stream);
    stream.close = async () => stream.abort(new Error("tunnel closed by its connection"));

    // TCP -> stream
    socket.on("data", (buf: Buffer) => {
      // the stream closed under us (its connection went away): send() would throw, and the
      // client's bytes can no longer arrive, so the client must see the cut
      if (stream.writeStatus !== "writable") return void cut();
      counters.sent(buf.length);
      if (!stream.send(buf)) socket.pause();
    });
    stream.addEventListener("drain", () => socket.resume());
    socket.on("end", () => {
      // client half-closed: close our writable end once queued bytes are out
      closeWritable().catch((err: Error) => stream.abort(err));
    });

    // stream -> TCP
    for (const chunk of options.head ?? []) {
      counters.received(chunk.byteLength);
      if (!socket.write(chunk)) stream.pause();
    }
    stream.addEventListener("message", (evt: StreamMessageEvent) => {
      const data = evt.data;
      let ok = true;
      if (data instanceof Uint8Array) {
        counters.received(data.byteLength);
        ok = socket.write(data);
      } else {
        counters.received(data.byteLength);
        // one writev for the whole message instead of a syscall per chunk
        socket.cork();
        for (const chunk of data) ok = socket.write(chunk);
        socket.uncork();
      }
      if (!ok) stream.pause();
    });
    socket.on("drain", () => stream.resume());
    // Only the remote's FIN is a clean end. A remote reset also ends the readable side (just
    // before 'close' with the error), and a libp2p connection that drops (agent killed, network
    // cut) ends its streams without FIN and without an error: both must reach the client as RST,
    // or a transfer cut off mid-way would look complete.
    // The remote may have half-closed before the pipe attached (a client that sent its request and
    // FIN right behind the tag): its 'remoteCloseWrite' has passed then, and so has 'end' if
    // nothing of it is still queued in the stream. Over a fast target the whole exchange may even
    // be over (both FINs, the stream closed) before the connect side's pipe attaches.
    const alive = stream.status === "open" || stream.status === "closing";
    let remoteFin = finned.has(stream) || (alive && stream.remoteWriteStatus === "closed");
    stream.addEventListener("remoteCloseWrite", () => (remoteFin = true));
    const onEnd = () => {
      if (socket.destroyed) return;
      if (remoteFin && stream.status !== "reset") return void socket.end();
      cut();
    };
    stream.addEventListener("end", onEnd);

    // errors and resets
    socket.on("error", (err: Error) => {
      reset = true;
      stream.abort(err);
    });
    socket.on("close", () => {
      socketClosed = true;
      // a socket destroyed while the stream still runs (e.g. idle timeout) must not leak it
      if (stream.status === "open" || stream.status === "closing") {
        if (stream.writeStatus === "writable") stream.abort(new Error("TCP connection closed"));
      }
      finish();
    });
    stream.addEventListener("close", (evt: StreamCloseEvent) => {
      streamClosed = true;
      // A clean close needs both FINs: the remote's, and ours, which we send only after the
      // client's (socket 'end'). Anything else is a cut (a reset, or the connection went away
      // while the client was still sending). With both, 'end' may still be on its way, after
      // data buffered while paused: the socket is ended then. Never destroy an ended socket
      // here: that drops what is still queued in it, and the client sees a clean end after
      // fewer bytes. Ended both ways, it closes itself once the queue is flushed.
      if (evt.error !== undefined || !remoteFin || !socket.readableEnded) cut();
      finish();
    });
    if (!alive) {
      // its 'close' has passed: judged as there (a reset, or a connection gone, is a cut)
      streamClosed = true;
      if (stream.status !== "closed" || !remoteFin || !socket.readableEnded) cut();
    }
    if (remoteFin && stream.readBufferLength === 0) onEnd(); // its 'end' has passed
    socket.resume();
  });
}

const MIN_READ = 64 * 1024;
const MAX_READ = 1024 * 1024;

/**
 * `onread` options for sockets we dial (the exposed target): Node reads 64 KiB at a time;
 * under bulk load bigger reads mean fewer yamux frames and 'data' events per byte (measured:
 * 2.30 -> 1.70 agent CPU-s per GiB). The size adapts, so idle or chatty connections keep small
 * buffers. Each read gets a fresh buffer (it may wait in a stream's queue) and is re-emitted as
 * 'data', so the pipe is the same for every socket; pause() stops reading as usual.
 */
export function bigReads(socket: () => Socket): OnReadOpts {
  let size = MIN_READ;
  return {
    buffer: () => Buffer.allocUnsafe(size),
    callback: (n: number, buf: Uint8Array) => {
      if (n === buf.length) size = Math.min(size * 2, MAX_READ);
      else if (n < buf.length / 4) size = Math.max(size / 2, MIN_READ);
      socket().emit("data", Buffer.from(buf.buffer, buf.byteOffset, n));
      return true;
    },
  };
}
