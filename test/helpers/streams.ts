// In-memory libp2p streams for protocol tests: no processes, no sockets (but tcpConnection). A yamux pair over a
// mock connection behaves like two peers' muxers (flow control, half-close, reset).
import { afterEach } from "vitest";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { defaultLogger } from "@libp2p/logger";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { multiaddrConnectionPair } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import type { Connection, MessageStream, MultiaddrConnection, Stream, StreamMuxer } from "@libp2p/interface";
import { noiseAesGcm } from "../../lib/p2p/encryption.ts";
import { YAMUX_OPTIONS } from "../../lib/p2p/node.ts";
import { createServer, connect, type Socket } from "node:net";
import { toMultiaddrConnection } from "../../node_modules/@libp2p/tcp/dist/src/socket-to-conn.js";

export interface StreamPair {
  /** the dialer's end */
  outbound: Stream;
  /** the listener's end */
  inbound: Stream;
  close(): Promise<void>;
}

export interface MuxerPair {
  /** the connection under each muxer (abort one: the link drops) */
  connections: [MultiaddrConnection, MultiaddrConnection];
  dialer: StreamMuxer;
  listener: StreamMuxer;
  /** a new stream from the dialer, with the listener's end */
  pair(): Promise<StreamPair>;
  close(): Promise<void>;
}

/** Two yamux muxers with the agents' settings (window, read buffer), unless told otherwise. */
export function yamuxPair(init: Parameters<typeof yamux>[0] = YAMUX_OPTIONS): MuxerPair {
  const [a, b] = multiaddrConnectionPair();
  const dialer = yamux(init)().createStreamMuxer(a);
  const listener = yamux(init)().createStreamMuxer(b);
  const close = async () => {
    await Promise.all([dialer.close().catch(() => {}), listener.close().catch(() => {})]);
  };
  return {
    connections: [a, b],
    dialer,
    listener,
    close,
    async pair() {
      const accepted = new Promise<Stream>((resolve) => listener.addEventListener("stream", (evt) => resolve(evt.detail), { once: true }));
      const outbound = await dialer.createStream();
      return { outbound, inbound: await accepted, close };
    },
  };
}

/**
 * The parts of a Connection the control protocols use: the remote peer's id and address, and
 * newStream (answered by `streams`, one per call).
 */
export function fakeConnection(
  remotePeer: string,
  streams: () => Promise<Stream> = () => Promise.reject(new Error("no streams")),
  remoteAddr = "/ip4/10.0.0.7/tcp/4001",
): Connection {
  return {
    remotePeer: { toString: () => remotePeer },
    remoteAddr: multiaddr(remoteAddr),
    newStream: () => streams(),
  } as unknown as Connection;
}

/** A test file's `pair()`: a new in-memory yamux stream pair; every muxer it made is closed after each test. */
export function pairsClosedAfterEach(): () => Promise<StreamPair> {
  let muxers: MuxerPair[] = [];
  afterEach(async () => {
    await Promise.all(muxers.map((m) => m.close()));
    muxers = [];
  });
  return () => {
    const m = yamuxPair();
    muxers.push(m);
    return m.pair();
  };
}

/**
 * Sends `total` bytes in pieces of `chunkSize` as fast as the stream takes them (on until send()
 * says it is full, then again at each 'drain'). Returns how many bytes were handed over so far.
 */
export function pump(stream: Stream, total: number, chunkSize: number): () => number {
  const chunk = new Uint8Array(chunkSize);
  let sent = 0;
  const go = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!stream.send(chunk)) return;
    }
  };
  stream.addEventListener("drain", go);
  go();
  return () => sent;
}

/** Two ends of the agents' Noise (AES-GCM) over an in-memory connection pair, and the connections under them. */
export async function noisePair(
  opts: Parameters<typeof multiaddrConnectionPair>[0] = {},
): Promise<{ a: MessageStream; b: MessageStream; transportA: MultiaddrConnection; transportB: MultiaddrConnection }> {
  const [ka, kb] = [await generateKeyPair("Ed25519"), await generateKeyPair("Ed25519")];
  const components = (privateKey: typeof ka) => ({
    privateKey,
    peerId: peerIdFromPrivateKey(privateKey),
    logger: defaultLogger(),
    upgrader: { getStreamMuxers: () => new Map() },
  });
  const [ca, cb] = multiaddrConnectionPair(opts);
  const [sa, sb] = await Promise.all([
    noiseAesGcm()(components(ka) as never).secureOutbound(ca, { remotePeer: peerIdFromPrivateKey(kb), skipStreamMuxerNegotiation: true }),
    noiseAesGcm()(components(kb) as never).secureInbound(cb, { skipStreamMuxerNegotiation: true }),
  ]);
  return { a: sa.connection, b: sb.connection, transportA: ca, transportB: cb };
}

/**
 * @libp2p/tcp's connection over a real loopback socket (its patched write path), with the far end's
 * socket; close() ends all of it.
 */
export async function tcpConnection(): Promise<{ socket: Socket; server: Socket; conn: MultiaddrConnection; close(): void }> {
  let server!: Socket;
  const listener = createServer((s) => (server = s));
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  const port = (listener.address() as { port: number }).port;
  const socket = connect({ port, host: "127.0.0.1" });
  await new Promise((r) => socket.once("connect", r));
  const conn = toMultiaddrConnection({
    socket,
    remoteAddr: multiaddr(`/ip4/127.0.0.1/tcp/${port}`),
    direction: "outbound",
    log: defaultLogger().forComponent("test"),
  }) as MultiaddrConnection;
  const close = () => {
    conn.abort(new Error("done"));
    server.destroy();
    listener.close();
  };
  return { socket, server, conn, close };
}
