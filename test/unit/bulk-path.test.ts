// The bulk cuts in the libp2p stack (patches/ for @chainsafe/libp2p-yamux, @chainsafe/libp2p-noise
// and @libp2p/tcp, and lib/p2p/encryption.ts; README "Performance", bulk). Each test fails on the
// unpatched package:
//  - yamux: a reader that pauses while taking its buffered data (a socket whose write() returned
//    false) still grants the window for what it took, so the sender is not stopped once per window
//  - yamux: bulk sends of one event-loop turn leave as one data frame, and data frames are at
//    most 1 MiB
//  - Noise: bulk leaves in full frames only (a 64 KiB read plus the yamux header was a full frame
//    and a frame of a few bytes)
//  - TCP: a multi-frame message goes to the socket at once (one writev), not one frame per 'drain'
//  - Noise: a frame that spans two reads is decrypted without copying it first
import { describe, expect, it, vi } from "vitest";
import { multiaddrConnectionPair } from "@libp2p/utils";
import { yamux } from "@chainsafe/libp2p-yamux";
import { Uint8ArrayList } from "uint8arraylist";
import type { MultiaddrConnection, Stream, StreamMuxer } from "@libp2p/interface";
// not exported by the package: the class the TCP transport wraps every socket in
import { aesGcmCrypto } from "../../lib/p2p/encryption.ts";
import { YAMUX_OPTIONS } from "../../lib/p2p/node.ts";
import { noisePair, pump, tcpConnection } from "../helpers/streams.ts";

const turn = () => new Promise((r) => setImmediate(r));
const settle = async (n = 5) => {
  for (let i = 0; i < n; i++) await turn();
};

async function muxedStreams(init: Parameters<typeof yamux>[0]): Promise<{ out: Stream; sink: Stream; muxers: StreamMuxer[]; wire: MultiaddrConnection }> {
  const factory = yamux(init)();
  const [a, b] = multiaddrConnectionPair({ capacity: 64 * 1024 * 1024 });
  const [ma, mb] = [factory.createStreamMuxer(a), factory.createStreamMuxer(b)];
  const incoming = new Promise<Stream>((resolve) => mb.addEventListener("stream", (e) => resolve(e.detail), { once: true }));
  const out = await ma.createStream();
  out.send(new Uint8Array(1)); // opens it at the far end
  const sink = await incoming;
  return { out, sink, muxers: [ma, mb], wire: a };
}

describe("yamux window for a reader that pauses while taking its data", () => {
  it("is granted for what it took: the sender goes on, and the read buffer stays within one window", async () => {
    const WINDOW = 256 * 1024;
    const { out, sink, muxers } = await muxedStreams({
      enableKeepAlive: false,
      streamOptions: { initialStreamWindowSize: WINDOW, maxStreamWindowSize: WINDOW, maxReadBufferLength: 2 * WINDOW, inactivityTimeout: 0 },
    });
    let taken = 0;
    let pauseInside = false;
    sink.addEventListener("message", (e) => {
      taken += e.data.byteLength;
      // like the tunnel's pipe when the socket's write() returns false
      if (pauseInside) sink.pause();
    });
    await settle();
    sink.pause();
    const total = 8 * WINDOW;
    pump(out, total, 16 * 1024);
    await settle(20);
    // the sender filled the window and stopped
    expect(sink.readBufferLength).toBeGreaterThan(WINDOW / 2);
    pauseInside = true;
    sink.resume(); // hands over what is buffered; the reader pauses again while taking it
    const takenAtResume = taken;
    expect(takenAtResume).toBeGreaterThan(WINDOW / 2);
    expect(sink.readStatus).toBe("paused");
    await settle(20);
    // unpatched: no window update until a resume finds the buffer empty, so nothing more came
    expect(sink.readBufferLength).toBeGreaterThan(0);
    expect(sink.readBufferLength).toBeLessThanOrEqual(WINDOW);
    expect(sink.status).toBe("open");
    // read normally: every byte arrives
    pauseInside = false;
    sink.resume();
    for (let i = 0; i < 400 && taken < total + 1; i++) await settle(2);
    expect(taken).toBe(total + 1);
    await Promise.all(muxers.map((m) => m.close()));
  });
});

describe("yamux bulk frames", () => {
  it("bulk sends of one turn leave as one data frame; a frame is at most 1 MiB; order is kept", async () => {
    const { out, sink, muxers, wire } = await muxedStreams(YAMUX_OPTIONS);
    const messages: Uint8Array[] = [];
    sink.addEventListener("message", (e) => messages.push(e.data.subarray()));
    await settle();
    messages.length = 0;
    const sends = vi.spyOn(wire, "send");
    for (let i = 0; i < 8; i++) out.send(new Uint8Array(64 * 1024).fill(i));
    out.send(Uint8Array.of(99)); // a small message after them goes at once, behind them
    await settle();
    // unpatched: one frame (one send to the connection) per 64 KiB send
    expect(sends.mock.calls.length).toBe(1);
    const got = Buffer.concat(messages);
    expect(got.length).toBe(8 * 64 * 1024 + 1);
    for (let i = 0; i < 8; i++) expect(got[i * 64 * 1024]).toBe(i);
    expect(got.at(-1)).toBe(99);

    messages.length = 0;
    out.send(new Uint8Array(3 * 1024 * 1024));
    await settle();
    // unpatched: one 3 MiB frame (the receiver waits for all of it before passing any on)
    expect(messages.reduce((n, m) => n + m.byteLength, 0)).toBe(3 * 1024 * 1024);
    expect(Math.max(...messages.map((m) => m.byteLength))).toBeLessThanOrEqual(1024 * 1024);
    await Promise.all(muxers.map((m) => m.close()));
  });
});

describe("Noise bulk frames", () => {
  it("64 KiB reads with a yamux header each leave as full frames, the rest with the next send or the check phase", async () => {
    // Noise takes the cipher functions when it is made
    const encrypt = vi.spyOn(aesGcmCrypto, "chaCha20Poly1305Encrypt");
    const { a, b } = await noisePair({ capacity: 64 * 1024 * 1024 });
    let got = 0;
    b.addEventListener("message", (e) => (got += e.data.byteLength));
    encrypt.mockClear(); // the handshake's
    const piece = 64 * 1024 + 12;
    for (let i = 0; i < 8; i++) a.send(new Uint8Array(piece));
    await settle();
    const frames = Math.ceil((8 * piece) / 65519);
    // unpatched: two frames per send (65,519 bytes and the 29-byte rest), 16 in all
    expect(encrypt.mock.calls.length).toBe(frames);
    for (let i = 0; i < 50 && got < 8 * piece; i++) await settle();
    expect(got).toBe(8 * piece);
    encrypt.mockRestore();
    await a.close();
  });

  it("a frame that spans two reads is decrypted without copying it whole first", async () => {
    const decrypt = vi.spyOn(aesGcmCrypto, "chaCha20Poly1305Decrypt");
    const { a, b, transportB } = await noisePair({ capacity: 64 * 1024 * 1024 });
    // split what arrives into pieces that never align with frames
    type Receiver = { onData(d: Uint8Array | Uint8ArrayList): void };
    const onData = (transportB as unknown as Receiver).onData.bind(transportB);
    (transportB as unknown as Receiver).onData = (d) => {
      const all = d.subarray();
      for (let i = 0; i < all.length; i += 40_000) onData(all.subarray(i, Math.min(i + 40_000, all.length)));
    };
    const received: Uint8Array[] = [];
    b.addEventListener("message", (e) => received.push(e.data.subarray()));
    decrypt.mockClear();
    const sent = Buffer.alloc(4 * 65519);
    for (let i = 0; i < sent.length; i++) sent[i] = i % 251;
    a.send(sent);
    for (let i = 0; i < 50 && received.reduce((n, r) => n + r.length, 0) < sent.length; i++) await settle();
    expect(Buffer.concat(received)).toEqual(sent);
    const spanning = decrypt.mock.calls
      .map((args, i) => ({ args, result: decrypt.mock.results[i].value }))
      .filter(({ args }) => !(args[0] instanceof Uint8Array));
    expect(spanning.length).toBeGreaterThan(0);
    for (const { args, result } of spanning) {
      // unpatched Noise: each spanning frame copied whole into a `dst` the cipher does not use
      expect(args[4]).toBeUndefined();
      // and the plaintext is not copied into one buffer once more
      expect(result).toBeInstanceOf(Uint8ArrayList);
    }
    decrypt.mockRestore();
    await a.close();
  });
});

describe("TCP writes", () => {
  it("a message of many frames goes to the socket at once: nothing is held back for a 'drain'", async () => {
    const { socket, server, conn, close } = await tcpConnection();
    server.pause(); // nothing is read: the socket's buffer fills
    const writes = vi.spyOn(socket, "write");
    const frames = new Uint8ArrayList(...Array.from({ length: 16 }, () => new Uint8Array(65537)));
    conn.send(frames as never); // (another copy of uint8arraylist than @libp2p/interface types)
    // unpatched: the first write() passes the 16 KiB high-water mark and the rest waits in the
    // connection's queue for 'drain' (then one frame per 'drain' again)
    expect(writes.mock.calls.length).toBe(16);
    expect(conn.writeBufferLength).toBe(0);
    close();
  });
});
