// Less garbage per small message in the libp2p stack (issue 10; patches/ for @libp2p/utils,
// @chainsafe/libp2p-noise, @chainsafe/libp2p-yamux and @libp2p/tcp; README "Performance"): a
// message in one piece passes through every layer without list helpers (append, sublist), whose
// arrays and views were most of an agent's ~11 KB of garbage per echo. Each test fails on the
// unpatched package.
//  - length-prefixed decoding (Noise's frames): a piece's first message is a view of it; a piece
//    of exactly one message is taken without decode()'s generator
//  - message streams: a chunk into an empty queue or read buffer is not pushed onto an empty array
//  - yamux: a small data frame is one buffer (header and data), and a frame in one piece is read
//    from it (a piece of exactly one frame without emitFrames' generator); a message within the
//    window is sent as it is, not as a sublist; no debugFrame() per frame while trace logging is off
//  - Noise: the queue handed to it is kept as it is, and one message's plaintext is not put in a list
//  - TCP: one piece is written as it is (no cork, no iterator)
import { afterEach, describe, expect, it, vi } from "vitest";
import { AbstractMessageStream, LengthPrefixedDecoder, type SendResult } from "@libp2p/utils";
import { defaultLogger } from "@libp2p/logger";
import { Uint8ArrayList as RootList } from "uint8arraylist";
import type { MultiaddrConnection } from "@libp2p/interface";
import { noisePair, tcpConnection, yamuxPair } from "../helpers/streams.ts";

const turn = () => new Promise((r) => setImmediate(r));
const settle = async () => {
  for (let i = 0; i < 5; i++) await turn();
};
const uint16 = (buf: Uint8Array | { subarray(a?: number, b?: number): Uint8Array }) => {
  if (buf.subarray().byteLength < 2) throw new RangeError("short");
  const b = buf.subarray(0, 2);
  return (b[0] << 8) | b[1];
};

/** the list class @libp2p/utils uses (not the root's uint8arraylist, which yamux uses) */
type Uint8ArrayList = Parameters<AbstractMessageStream["sendData"]>[0];
/** what a decoder holds between reads (a private field) */
const bufferOf = (decoder: LengthPrefixedDecoder) => (decoder as unknown as { buffer: Uint8ArrayList }).buffer;
const utilsList = Object.getPrototypeOf(bufferOf(new LengthPrefixedDecoder())) as Uint8ArrayList;

/**
 * Count calls of the list helpers that allocate, on both list classes in use, but for those of
 * the in-memory link under the test (@libp2p/utils' MessageQueue takes a sublist of what it carries)
 */
function countListHelpers(): { calls: () => string[]; restore: () => void } {
  const calls: string[] = [];
  const restores = [utilsList, RootList.prototype as unknown as Uint8ArrayList].flatMap((proto) =>
    (["append", "sublist"] as const).map((name) => {
      const original = proto[name] as (...args: unknown[]) => unknown;
      proto[name] = function (this: unknown, ...args: unknown[]) {
        if (new Error().stack?.includes("message-queue.js") !== true) calls.push(name);
        return original.apply(this, args);
      } as never;
      return () => (proto[name] = original as never);
    }),
  );
  return { calls: () => calls, restore: () => restores.forEach((r) => r()) };
}
afterEach(() => vi.restoreAllMocks());

describe("length-prefixed decoding", () => {
  it("a piece's first message is a view of it; the rest is decoded as before, in order, also when decode() is called meanwhile", () => {
    const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16, encodingLength: () => 2 });
    const piece = Uint8Array.of(0, 3, 1, 2, 3, 0, 2, 4, 5, 0, 3, 6);
    const got: Uint8Array[] = [];
    for (const m of decoder.decode(piece)) {
      if (got.length === 0) {
        // unpatched: a sublist of the decoder's list
        expect(m).toBeInstanceOf(Uint8Array);
        expect((m as unknown as Uint8Array).buffer).toBe(piece.buffer);
        // a read that arrives while the first message is being handled goes after the rest
        got.push(m.subarray());
        for (const n of decoder.decode(Uint8Array.of(7, 8, 0, 1, 9))) got.push(n.subarray());
      } else got.push(m.subarray());
    }
    expect(got.map((m) => [...m])).toEqual([[1, 2, 3], [4, 5], [6, 7, 8], [9]]);
    expect(bufferOf(decoder).byteLength).toBe(0);
    // a message split over two reads still arrives whole
    expect([...decoder.decode(Uint8Array.of(0, 4, 1))]).toHaveLength(0);
    expect([...decoder.decode(Uint8Array.of(2, 3, 4))].map((m) => [...m.subarray()])).toEqual([[1, 2, 3, 4]]);
  });
});

class TestStream extends AbstractMessageStream {
  handed: Uint8ArrayList[] = [];
  constructor() {
    super({ log: defaultLogger().forComponent("test:stream"), direction: "outbound" });
  }
  sendData(data: Uint8ArrayList): SendResult {
    this.handed.push(data);
    return { sentBytes: data.byteLength, canSendMore: true };
  }
  sendReset(): void {}
  sendPause(): void {}
  sendResume(): void {}
  async close(): Promise<void> {}
  receive(data: Uint8Array): void {
    this.onData(data);
  }
}

describe("message streams' queues", () => {
  it("a chunk goes into an empty send queue or read buffer without append (a push onto an empty array)", () => {
    const s = new TestStream();
    const got: Uint8Array[] = [];
    s.addEventListener("message", (e) => got.push(e.data.subarray()));
    const helpers = countListHelpers();
    s.send(Uint8Array.of(1, 2, 3));
    s.receive(Uint8Array.of(4, 5));
    expect(helpers.calls()).toEqual([]);
    helpers.restore();
    expect([...s.handed[0].subarray()]).toEqual([1, 2, 3]);
    expect(got.map((m) => [...m])).toEqual([[4, 5]]);
  });
});

describe("yamux frames", () => {
  it("a small message is sent as one buffer, header and data, and arrives without list helpers on either side", async () => {
    const muxers = yamuxPair();
    const { outbound, inbound } = await muxers.pair();
    await settle();
    const [conn] = muxers.connections;
    const sent: Array<Uint8Array | Uint8ArrayList> = [];
    const send = conn.send.bind(conn);
    conn.send = (data: Parameters<MultiaddrConnection["send"]>[0]) => {
      sent.push(data);
      return send(data);
    };
    const got: Uint8Array[] = [];
    inbound.addEventListener("message", (e) => got.push(e.data.subarray()));
    const helpers = countListHelpers();
    const frames = vi.spyOn((muxers.listener as unknown as { decoder: { emitFrames: () => unknown } }).decoder, "emitFrames");
    // (the spy has no `enabled`: as when trace logging is off)
    const traces = [muxers.dialer, muxers.listener].map((m) => vi.spyOn((m as unknown as { log: { trace: (message: string) => void } }).log, "trace"));
    outbound.send(new Uint8Array(64).fill(7));
    await settle();
    // unpatched: a sublist of the queue, a list of the 12-byte header and it; a sublist per frame
    // read, by a generator
    expect(helpers.calls()).toEqual([]);
    expect(frames).not.toHaveBeenCalled();
    // unpatched: debugFrame() (an object and an array) per frame sent and received, for a no-op logger
    expect(traces.flatMap((t) => t.mock.calls).filter(([m]) => String(m).includes("frame %o"))).toEqual([]);
    helpers.restore();
    frames.mockRestore();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(Uint8Array);
    expect(sent[0].byteLength).toBe(12 + 64);
    expect(got.map((m) => [...m])).toEqual([Array(64).fill(7)]);
    // bulk is still a list of the header and the data, and frames split across reads still arrive
    let bytes = 0;
    inbound.addEventListener("message", (e) => (bytes += e.data.byteLength));
    outbound.send(new Uint8Array(100_000));
    for (let i = 0; i < 50 && bytes < 100_000; i++) await settle();
    expect(bytes).toBe(100_000);
    await muxers.close();
  });
});

describe("Noise messages", () => {
  it("a small message is encrypted, sent, decoded and decrypted without list helpers", async () => {
    const { a, b } = await noisePair();
    const got: Uint8Array[] = [];
    b.addEventListener("message", (e) => got.push(e.data.subarray()));
    const helpers = countListHelpers();
    const decode = vi.spyOn((b as unknown as { decoder: LengthPrefixedDecoder }).decoder, "decode");
    a.send(Uint8Array.of(1, 2, 3));
    await settle();
    // unpatched: the queue appended to the pending list, the plaintext to an output list, the
    // message decoded by a generator ...
    expect(helpers.calls()).toEqual([]);
    expect(decode).not.toHaveBeenCalled();
    helpers.restore();
    decode.mockRestore();
    expect(got.map((m) => [...m])).toEqual([[1, 2, 3]]);
    // a full frame's worth and more still arrives whole, in order
    const big = new Uint8Array(150_000).map((_, i) => i % 251);
    const parts: Uint8Array[] = [];
    b.addEventListener("message", (e) => parts.push(e.data.subarray()));
    a.send(big);
    for (let i = 0; i < 50 && parts.reduce((n, p) => n + p.byteLength, 0) < big.byteLength; i++) await settle();
    expect(Buffer.concat(parts)).toEqual(Buffer.from(big));
    await a.close();
  });
});

describe("TCP writes", () => {
  it("one piece is written as it is: no cork", async () => {
    const { socket, conn, close } = await tcpConnection();
    const writes = vi.spyOn(socket, "write");
    const cork = vi.spyOn(socket, "cork");
    const piece = new Uint8Array(76);
    conn.send(piece);
    // unpatched: cork(), the list's iterator, write(), uncork()
    expect(cork).not.toHaveBeenCalled();
    expect(writes.mock.calls.map((c) => c[0])).toEqual([piece]);
    // two pieces: one writev
    conn.send(new RootList(new Uint8Array(3), new Uint8Array(4)) as never);
    expect(cork).toHaveBeenCalledTimes(1);
    close();
  });
});
