// lib/p2p/pipe.ts and the stream flow control under it, in one process: a loopback TCP socket
// on one side, an in-memory yamux stream pair with the agents' settings on the other (no agent
// processes). Data both ways,
// counters, half-close each way, resets each way, and backpressure with a slow TCP reader.
import { afterEach, describe, expect, it } from "vitest";
import { createServer, connect, type Server, type Socket } from "node:net";
import { createHash, randomBytes } from "node:crypto";
import type { Stream } from "@libp2p/interface";
import { pipeSocketStream, type PipeResult } from "../../lib/p2p/pipe.ts";
import { yamuxPair, type MuxerPair } from "../helpers/streams.ts";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

interface Rig {
  /** the TCP client (a user's connection to the agent) */
  client: Socket;
  /** the far end of the libp2p stream (the other agent) */
  remote: Stream;
  /** the stream the pipe carries */
  piped: Stream;
  result: Promise<PipeResult>;
  counted: { sent: number; received: number };
}

/** client <-TCP-> [agent socket <-pipe-> stream] <-yamux-> remote */
async function rig(muxer: MuxerPair = yamuxPair()): Promise<Rig> {
  const { outbound, inbound } = await muxer.pair();
  const counted = { sent: 0, received: 0 };
  let result!: Promise<PipeResult>;
  // as the agent's listener and the client of a half-closing protocol: FIN does not end the other direction
  let agentSide: Socket | undefined;
  const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
    agentSide = sock;
    result = pipeSocketStream(sock, outbound, { sent: (n) => (counted.sent += n), received: (n) => (counted.received += n) });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = connect({ port: (server.address() as { port: number }).port, host: "127.0.0.1", allowHalfOpen: true });
  client.on("error", () => {}); // resets are expected in some tests; they are asserted on 'close'
  await new Promise((r) => client.once("connect", r));
  await until(() => result !== undefined);
  cleanup.push(
    () => client.destroy(),
    () => agentSide?.destroy(),
    () => muxer.close(),
    () => new Promise((r) => server.close(r)),
  );
  return { client, remote: inbound, piped: outbound, result, counted };
}

async function until(f: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}

function collect(stream: Stream): { chunks: Buffer[]; ended: Promise<void>; text(): string } {
  const chunks: Buffer[] = [];
  stream.addEventListener("message", (e) => chunks.push(Buffer.from(e.data.subarray())));
  const ended = new Promise<void>((r) => stream.addEventListener("remoteCloseWrite", () => r(), { once: true }));
  return { chunks, ended, text: () => Buffer.concat(chunks).toString() };
}

/** Sends `total` bytes of a seeded pattern into `stream`, respecting backpressure; returns its sha256. */
async function sendBulk(stream: Stream, total: number, chunk = 64 * 1024): Promise<string> {
  const block = randomBytes(chunk);
  const hash = createHash("sha256");
  for (let sent = 0; sent < total; sent += chunk) {
    const part = block.subarray(0, Math.min(chunk, total - sent));
    hash.update(part);
    if (stream.status !== "open") throw new Error(`stream ${stream.status} after ${sent} bytes`);
    if (!stream.send(part)) await stream.onDrain();
  }
  return hash.digest("hex");
}

describe("pipe: socket <-> stream", () => {
  it("bytes go both ways and are counted on each side", async () => {
    const { client, remote, counted } = await rig();
    const atRemote = collect(remote);
    const atClient: Buffer[] = [];
    client.on("data", (d) => atClient.push(d));
    client.write("hello from tcp");
    remote.send(new TextEncoder().encode("hello from the network"));
    await until(() => atRemote.text() === "hello from tcp" && Buffer.concat(atClient).toString() === "hello from the network");
    expect(counted).toEqual({ sent: 14, received: 22 });
  });

  it("client half-close (FIN): the stream's writable end closes, the other direction still flows; both closed: resolves without reset", async () => {
    const { client, remote, result } = await rig();
    const atRemote = collect(remote);
    const atClient: Buffer[] = [];
    let clientEnded = false;
    client.on("data", (d) => atClient.push(d));
    client.on("end", () => (clientEnded = true));
    client.end("last words");
    await atRemote.ended;
    expect(atRemote.text()).toBe("last words");
    remote.send(Buffer.from("reply after FIN"));
    await until(() => Buffer.concat(atClient).toString() === "reply after FIN");
    expect(clientEnded).toBe(false);
    await remote.close();
    await until(() => clientEnded);
    expect(await result).toEqual({ reset: false });
  });

  it("remote half-close: the client gets FIN after the data, and may still send", async () => {
    const { client, remote, result } = await rig();
    const atRemote = collect(remote);
    const atClient: Buffer[] = [];
    let ended = false;
    client.on("data", (d) => atClient.push(d));
    client.on("end", () => (ended = true));
    remote.send(Buffer.from("all of it"));
    await remote.close();
    await until(() => ended);
    expect(Buffer.concat(atClient).toString()).toBe("all of it");
    client.end("still heard");
    await atRemote.ended;
    expect(atRemote.text()).toBe("still heard");
    expect(await result).toEqual({ reset: false });
  });

  it("a remote reset reaches the client as a TCP reset (not FIN), and the result says reset", async () => {
    const { client, remote, result } = await rig();
    let ended = false;
    const error = new Promise<NodeJS.ErrnoException>((r) => client.once("error", r));
    client.on("end", () => (ended = true));
    remote.abort(new Error("remote gone"));
    expect((await error).code).toBe("ECONNRESET");
    expect(ended).toBe(false);
    expect(await result).toEqual({ reset: true });
  });

  it("a client reset (RST) resets the stream: the remote sees an error, not a clean end", async () => {
    const { client, remote, result } = await rig();
    const closed = new Promise<Error | undefined>((r) => remote.addEventListener("close", (e) => r(e.error), { once: true }));
    client.resetAndDestroy();
    expect(await closed).toBeInstanceOf(Error);
    expect(remote.status).toBe("reset");
    expect(await result).toEqual({ reset: true });
  });

  // @libp2p/utils ends every stream of a dropped connection without FIN and without an error
  // (AbstractStreamMuxer.onTransportClosed): the pipe must not turn that into the client's FIN.
  it("the whole connection dropping reaches the client as a reset, never as a clean end", async () => {
    const muxer = yamuxPair();
    const { client, result } = await rig(muxer);
    const outcome = new Promise<string>((resolve) => {
      client.once("error", () => resolve("reset"));
      client.once("end", () => resolve("clean end"));
      setTimeout(() => resolve("nothing within 2 s"), 2_000);
    });
    muxer.connections[0].abort(new Error("connection lost"));
    expect(await outcome).toBe("reset");
    expect(await result).toEqual({ reset: true });
  });

  // libp2p's Connection.close() closes every stream of the connection gracefully (muxer.close():
  // a FIN on each), when it prunes a connection, replaces a relayed one by a direct one, or the
  // agent stops: for a tunnel, that FIN would tell the far end's client that a transfer cut
  // off mid-way is complete. Only the pipe ends a tunnel cleanly; any other close is a reset.
  it("a connection closed gracefully under a running tunnel resets both ends instead of sending FIN", async () => {
    const muxer = yamuxPair();
    const { client, remote, result } = await rig(muxer);
    let remoteFin = false;
    remote.addEventListener("remoteCloseWrite", () => (remoteFin = true));
    const remoteClosed = new Promise<Error | undefined>((r) => remote.addEventListener("close", (e) => r(e.error), { once: true }));
    const outcome = new Promise<string>((resolve) => {
      client.once("error", () => resolve("reset"));
      client.once("end", () => resolve("clean end"));
      setTimeout(() => resolve("nothing within 2 s"), 2_000);
    });
    client.write("some of it");
    await muxer.dialer.close();
    expect(await remoteClosed).toBeInstanceOf(Error);
    expect(remoteFin).toBe(false);
    expect(await outcome).toBe("reset");
    expect(await result).toEqual({ reset: true });
  });

  // A closure stored on each stream (the former `stream.close = async () => stream.abort(...)`)
  // made V8 promote nearly all of a tunnel's objects to the old space: ~9 KB per new connection
  // until the next full GC, 5-10 ms scavenges (hack/conn-rss.ts, --trace-gc-nvp). One shared function.
  it("every piped stream's close() is one shared function (no closure per stream), and it still resets", async () => {
    const a = await rig();
    const b = await rig();
    expect(a.piped.close).toBe(b.piped.close);
    const remoteClosed = new Promise<Error | undefined>((r) => a.remote.addEventListener("close", (e) => r(e.error), { once: true }));
    await a.piped.close();
    expect(await remoteClosed).toBeInstanceOf(Error);
    expect(await a.result).toEqual({ reset: true });
  });

  it("backpressure: 32 MiB to a client that stalls now and then arrive whole, the stream is never reset", async () => {
    const { client, remote, result } = await rig();
    const hash = createHash("sha256");
    let got = 0;
    // a reader that stalls for 100 ms after every 4 MiB: the socket's buffer fills, the stream
    // pauses and buffers a window's worth, which the next 'drain' hands to the socket at once
    let stallAt = 4 << 20;
    client.on("data", (d) => {
      hash.update(d);
      got += d.length;
      if (got < stallAt) return;
      stallAt += 4 << 20;
      client.pause();
      setTimeout(() => client.resume(), 100);
    });
    const total = 32 * 1024 * 1024;
    const sent = await sendBulk(remote, total);
    await remote.close();
    await until(() => got === total || client.destroyed, 60_000);
    expect(got).toBe(total);
    expect(hash.digest("hex")).toBe(sent);
    expect(remote.status).not.toBe("reset");
    client.end();
    expect(await result).toEqual({ reset: false });
  }, 60_000);
});

describe("the end of a download whose client half-closed first", () => {
  /** A stream whose events the test fires itself, in the order libp2p fires them. */
  class ScriptedStream extends EventTarget {
    status = "open";
    readStatus = "readable";
    writeStatus = "writable";
    send = () => true;
    close = async () => {
      this.writeStatus = "closed";
    };
    abort = () => {
      this.status = "reset";
    };
    pause = () => {};
    resume = () => {};
    fire(type: string, init: Record<string, unknown> = {}) {
      this.dispatchEvent(Object.assign(new Event(type), init));
    }
  }

  // The remote's FIN with nothing left in the stream's buffer: libp2p dispatches 'end' and, our
  // side being closed already, 'close' right after. The socket was ended with the last bytes still
  // queued in it (a paused client), and destroying it on 'close' dropped them: the client saw a
  // clean EOF after fewer bytes (4,157,952 of 33,554,432 here before the fix).
  it("every byte queued in the socket reaches a paused client before its clean end", async () => {
    const stream = new ScriptedStream();
    let result!: Promise<PipeResult>;
    const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
      result = pipeSocketStream(sock, stream as unknown as Stream, { sent: () => {}, received: () => {} });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    const client = connect({ port: (server.address() as { port: number }).port, host: "127.0.0.1", allowHalfOpen: true });
    client.on("error", () => {});
    cleanup.push(() => client.destroy());
    await new Promise((r) => client.once("connect", r));
    await until(() => result !== undefined);
    client.pause();
    client.end(); // the request is complete: the client only reads now
    await until(() => stream.writeStatus === "closed"); // its FIN went through the pipe
    const total = 32 * 1024 * 1024; // far more than the kernel's socket buffers hold
    stream.fire("message", { data: new Uint8Array(total) });
    stream.fire("remoteCloseWrite");
    stream.fire("end");
    stream.status = "closed";
    stream.fire("close");
    let got = 0;
    let ended = false;
    client.on("data", (d) => (got += d.length));
    client.on("end", () => (ended = true));
    client.resume();
    await until(() => ended || client.destroyed, 30_000);
    expect(got).toBe(total);
    expect(ended).toBe(true);
    expect(await result).toEqual({ reset: false });
  }, 60_000);
});

describe("stream flow control under the pipe (@libp2p/utils resume, patched)", () => {
  it("a listener that pauses the stream again while resume() dispatches buffered data keeps it paused on the wire: no overflow, no reset", async () => {
    const muxer = yamuxPair();
    cleanup.push(() => muxer.close());
    const { outbound: sender, inbound: receiver } = await muxer.pair();
    let pauseOnNext = false;
    let got = 0;
    const hash = createHash("sha256");
    receiver.addEventListener("message", (e) => {
      got += e.data.byteLength;
      hash.update(e.data.subarray());
      if (pauseOnNext) {
        pauseOnNext = false;
        receiver.pause(); // what the pipe does when socket.write returns false
      }
    });
    receiver.pause();
    const total = 24 * 1024 * 1024; // well over the agents' read buffer limit (8 MiB) and window (4 MiB)
    const sending = sendBulk(sender, total);
    sending.catch(() => {});
    await until(() => receiver.readBufferLength > 0);
    await new Promise((r) => setTimeout(r, 50));
    pauseOnNext = true;
    receiver.resume(); // dispatches what is buffered: the listener pauses it again
    expect(receiver.readStatus).toBe("paused");
    // the sender must now stall: with window updates still granted it would fill the read
    // buffer past its limit and the stream would be reset
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.status).toBe("open");
    expect(sender.status).toBe("open");
    expect(receiver.readBufferLength).toBeLessThanOrEqual(receiver.maxReadBufferLength);
    receiver.resume();
    const sent = await sending;
    await sender.close();
    await until(() => got === total);
    expect(hash.digest("hex")).toBe(sent);
  }, 30_000);
});
