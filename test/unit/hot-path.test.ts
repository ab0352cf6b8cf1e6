// The per-message cuts in the libp2p stack (patches/ for @chainsafe/libp2p-yamux,
// @chainsafe/libp2p-noise and @libp2p/utils; README "Performance"): each test fails on the
// unpatched package.
//  - yamux: window updates batched (half the window used), not one frame per data frame
//  - Noise: small sends of one event-loop turn leave as one Noise frame and one transport send;
//    a full frame's worth at once; close() sends what is pending first
//  - length-prefixed decoding: the length decoder is not asked (and does not throw) once the
//    buffer is empty
//  - no 'idle' event object per send when nobody listens
//  - Noise: a small frame goes to the transport as one buffer (length prefix and ciphertext)
//  - the exposed target's reads (lib/p2p/pipe.ts bigReads): a small read is copied out and the
//    read buffer used again, not a fresh 64 KiB buffer per reply
//  - message streams hand a whole send queue to the transport, and a whole read buffer to
//    'message' listeners, as it is: not a sublist of it and a copy of that (garbage per message)
import { describe, expect, it, vi } from "vitest";
import { AbstractMessageStream, LengthPrefixedDecoder, multiaddrConnectionPair, type SendResult } from "@libp2p/utils";
import { defaultLogger } from "@libp2p/logger";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { MessageStream, MultiaddrConnection, Stream } from "@libp2p/interface";
import { createServer, connect, type Socket } from "node:net";
import { YAMUX_OPTIONS } from "../../lib/p2p/node.ts";
import { bigReads } from "../../lib/p2p/pipe.ts";
import { noisePair as noiseConnectionPair, pump, yamuxPair } from "../helpers/streams.ts";

const turn = () => new Promise((r) => setImmediate(r));
const settle = async () => {
  for (let i = 0; i < 5; i++) await turn();
};

/** Count what a connection hands to its transport (calls of send). */
function countSends(conn: MultiaddrConnection): { calls: number; bytes: number } {
  const count = { calls: 0, bytes: 0 };
  const send = conn.send.bind(conn);
  conn.send = (data: Parameters<MultiaddrConnection["send"]>[0]) => {
    count.calls++;
    count.bytes += data.byteLength;
    return send(data);
  };
  return count;
}

describe("yamux window updates", () => {
  it("100 small messages cost the receiver no window-update frame; a bulk transfer still gets updates and completes", async () => {
    // no backpressure from the in-memory link (its drain can be missed): only yamux windows
    const [ca, cb] = multiaddrConnectionPair({ capacity: 1_000_000 });
    const [dialer, listener] = [yamux(YAMUX_OPTIONS)().createStreamMuxer(ca), yamux(YAMUX_OPTIONS)().createStreamMuxer(cb)];
    const accepted = new Promise<Stream>((resolve) => listener.addEventListener("stream", (e) => resolve(e.detail), { once: true }));
    const outbound = await dialer.createStream();
    const inbound = await accepted;
    let got = 0;
    inbound.addEventListener("message", (e) => (got += e.data.byteLength));
    // the first data frame is answered with the stream's ACK (a flagged window update)
    outbound.send(new Uint8Array(64));
    await settle();
    const sentByReceiver = countSends(cb);
    for (let i = 1; i < 100; i++) {
      outbound.send(new Uint8Array(64));
      await turn();
    }
    await settle();
    expect(got).toBe(6400);
    // unpatched: one 12-byte window update per data frame
    expect(sentByReceiver.calls).toBe(0);

    // 3 windows' worth: the sender needs updates from the receiver to finish
    const total = 12 * 1024 * 1024;
    pump(outbound, total, 256 * 1024);
    for (let i = 0; i < 200 && got < 6400 + total; i++) await settle();
    expect(got).toBe(6400 + total);
    expect(sentByReceiver.calls).toBeGreaterThan(0);
    await Promise.all([dialer.close(), listener.close()]);
  });
});

async function noisePair(): Promise<{ a: MessageStream; b: MessageStream; wireA: { calls: number; bytes: number }; transportA: MultiaddrConnection }> {
  const { a, b, transportA } = await noiseConnectionPair();
  return { a, b, wireA: countSends(transportA), transportA };
}

describe("Noise frames", () => {
  it("50 small sends in one turn leave as one Noise frame and one transport send, in order", async () => {
    const { a, b, wireA } = await noisePair();
    const received: Uint8Array[] = [];
    b.addEventListener("message", (e) => received.push(e.data.subarray()));
    for (let i = 0; i < 50; i++) a.send(Uint8Array.of(i, i, i));
    await settle();
    // unpatched: 50 frames (50 ciphers and tags), 50 sends
    expect(wireA.calls).toBe(1);
    expect(wireA.bytes).toBe(2 + 150 + 16);
    expect(Buffer.concat(received)).toEqual(Buffer.from(Array.from({ length: 50 }, (_, i) => [i, i, i]).flat()));
    await a.close();
  });

  it("a full frame's worth is sent at once, and close() sends what is pending first", async () => {
    const { a, b, wireA } = await noisePair();
    let got = 0;
    let ended = false;
    b.addEventListener("message", (e) => (got += e.data.byteLength));
    b.addEventListener("close", () => (ended = true));
    a.send(new Uint8Array(100_000));
    expect(wireA.calls).toBe(1); // synchronously: bulk is not held back
    a.send(new Uint8Array(10));
    await a.close();
    for (let i = 0; i < 50 && !ended; i++) await settle();
    expect(got).toBe(100_010);
  });

  it("closing the transport under Noise (libp2p's Connection.close does) sends what is pending first", async () => {
    const { a, b, transportA } = await noisePair();
    let got = 0;
    b.addEventListener("message", (e) => (got += e.data.byteLength));
    a.send(new Uint8Array(10));
    await transportA.close();
    for (let i = 0; i < 50 && got < 10; i++) await settle();
    expect(got).toBe(10);
  });
});

describe("Noise frames to the transport", () => {
  it("a small frame reaches the transport as one buffer, its length prefix included (one write, not a writev)", async () => {
    const { a, b, transportA } = await noisePair();
    const pieces: number[] = [];
    const send = transportA.send.bind(transportA);
    transportA.send = (data: Parameters<MultiaddrConnection["send"]>[0]) => {
      pieces.push(data instanceof Uint8Array ? 1 : [...data].length);
      return send(data);
    };
    const received: Uint8Array[] = [];
    b.addEventListener("message", (e) => received.push(e.data.subarray()));
    a.send(Uint8Array.of(1, 2, 3));
    a.send(Uint8Array.of(4, 5));
    await settle();
    // unpatched: a list of two (the 2-byte length, then ciphertext and tag)
    expect(pieces).toEqual([1]);
    expect(Buffer.concat(received)).toEqual(Buffer.from([1, 2, 3, 4, 5]));
    // bulk still arrives whole
    a.send(new Uint8Array(200_000).fill(7));
    let got = 0;
    b.addEventListener("message", (e) => (got += e.data.byteLength));
    for (let i = 0; i < 50 && got < 200_000; i++) await settle();
    expect(got).toBe(200_000);
    await a.close();
  });
});

describe("length-prefixed decoding", () => {
  it("does not run the length decoder on an empty buffer (it throws there)", () => {
    const seen: number[] = [];
    const decoder = new LengthPrefixedDecoder({
      lengthDecoder: (buf) => {
        seen.push(buf.byteLength);
        if (buf.byteLength < 2) throw new RangeError("short");
        return (buf instanceof Uint8Array ? buf : buf.subarray(0, 2))[1];
      },
      encodingLength: () => 2,
    });
    const out = [...decoder.decode(Uint8Array.of(0, 1, 7, 0, 2, 8, 9))].map((x) => [...x.subarray()]);
    expect(out).toEqual([[7], [8, 9]]);
    expect(seen).not.toContain(0);
  });
});

describe("'idle' events", () => {
  it("sends dispatch none without listeners, and close() still waits for queued data", async () => {
    const muxers = yamuxPair();
    const { outbound, inbound } = await muxers.pair();
    const dispatch = vi.spyOn(outbound, "dispatchEvent");
    outbound.send(new Uint8Array(64));
    expect(dispatch.mock.calls.filter(([e]) => e.type === "idle")).toHaveLength(0);
    let got = 0;
    inbound.addEventListener("message", (e) => (got += e.data.byteLength));
    await outbound.close();
    await settle();
    expect(got).toBe(64);
    await muxers.close();
  });
});

describe("reads from the exposed target (bigReads)", () => {
  it("small replies reuse one read buffer and arrive intact; a big read keeps its buffer", async () => {
    const server = createServer((s) => s.on("data", (d) => s.write(d)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as { port: number };
    const opts = bigReads(() => socket);
    const buffers = new Set<ArrayBufferLike>();
    const gen = opts.buffer as () => Uint8Array;
    opts.buffer = () => {
      const b = gen();
      buffers.add(b.buffer);
      return b;
    };
    const socket: Socket = connect({ port, host: "127.0.0.1", noDelay: true, onread: opts });
    const got: Buffer[] = [];
    socket.on("data", (d: Buffer) => got.push(d));
    // 50 requests and replies, one at a time
    for (let i = 0; i < 50; i++) {
      const n = got.length;
      socket.write(Buffer.alloc(64, i));
      while (got.length === n) await turn();
    }
    expect(got.every((d, i) => d.length === 64 && d[0] === i && d[63] === i)).toBe(true);
    // every reply was read into the same buffer (the first one), and what was emitted is a copy
    // that the next read did not overwrite
    expect(buffers.size).toBe(1);
    // a big read is handed over as is: the next read gets a fresh buffer
    const big = Buffer.alloc(256 * 1024, 7);
    let bytes = 0;
    const before = buffers.size;
    socket.removeAllListeners("data");
    socket.on("data", (d: Buffer) => (bytes += d.length));
    socket.write(big);
    while (bytes < big.length) await turn();
    if (buffers.size === before) throw new Error("no read of more than 16 KiB happened");
    expect(buffers.size).toBeGreaterThan(before);
    socket.destroy();
    await new Promise((r) => server.close(r));
  });
});

/** the list class @libp2p/utils uses (not the root's uint8arraylist) */
type Uint8ArrayList = Parameters<AbstractMessageStream["sendData"]>[0];

/**
 * A message stream whose transport takes what sendData allows (`take` bytes per call, consuming
 * them from the list as yamux does) and records every list it was handed.
 */
class TestStream extends AbstractMessageStream {
  handed: Uint8ArrayList[] = [];
  sent: Uint8Array[] = [];
  take = Infinity;
  constructor() {
    super({ log: defaultLogger().forComponent("test:stream"), direction: "outbound" });
  }
  sendData(data: Uint8ArrayList): SendResult {
    this.handed.push(data);
    const n = Math.min(this.take, data.byteLength);
    this.sent.push(data.slice(0, n));
    data.consume(n);
    // what is left in the list did not go: the transport is full until 'drain'
    return { sentBytes: n, canSendMore: data.byteLength === 0 };
  }
  sendReset(): void {}
  sendPause(): void {}
  sendResume(): void {}
  async close(): Promise<void> {}
  get queue(): Uint8ArrayList {
    return this.writeBuffer;
  }
  get incoming(): Uint8ArrayList {
    return this.readBuffer;
  }
  receive(data: Uint8Array): void {
    this.onData(data);
  }
}

describe("message streams' queues (processSendQueue, dispatchReadBuffer)", () => {
  it("a whole queue is handed to the transport and to 'message' listeners as it is, not copied into sublists", () => {
    const s = new TestStream();
    const queue = s.queue;
    const sublist = vi.spyOn(Object.getPrototypeOf(queue) as Uint8ArrayList, "sublist");
    s.send(Uint8Array.of(1, 2, 3));
    // unpatched: a sublist of the queue, and a copy of that
    expect(s.handed[0]).toBe(queue);
    expect(s.queue.byteLength).toBe(0);
    const incoming = s.incoming;
    const got: Array<Uint8Array | Uint8ArrayList> = [];
    s.addEventListener("message", (e) => got.push(e.data));
    s.receive(Uint8Array.of(4, 5));
    expect(got[0]).toBe(incoming);
    expect(got[0].subarray()).toEqual(Uint8Array.of(4, 5));
    expect(s.incoming.byteLength).toBe(0);
    expect(sublist).not.toHaveBeenCalled();
    sublist.mockRestore();
  });

  it("what the transport did not take goes back to the front of the queue, in order, one chunk or several", async () => {
    const s = new TestStream();
    s.take = 2;
    // one chunk: 2 bytes go, 3 come back, the stream waits for 'drain'
    expect(s.send(Uint8Array.of(1, 2, 3, 4, 5))).toBe(false);
    expect([...s.queue.subarray()]).toEqual([3, 4, 5]);
    // queued behind them while waiting: several chunks
    s.send(Uint8Array.of(6, 7));
    s.send(Uint8Array.of(8));
    s.take = 4;
    s.dispatchEvent(new Event("drain"));
    await turn();
    expect([...s.queue.subarray()]).toEqual([7, 8]);
    s.take = Infinity;
    s.dispatchEvent(new Event("drain"));
    await turn();
    expect(s.sent.map((b) => [...b])).toEqual([
      [1, 2],
      [3, 4, 5, 6],
      [7, 8],
    ]);
    expect(s.queue.byteLength).toBe(0);
  });
});
