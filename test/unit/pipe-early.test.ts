// A pipe attached late (lib/p2p/pipe.ts) and the tunnel's head reader (readHead in
// lib/p2p/tunnels.ts): over /entangle/tunnel/1.1.0 the client's bytes and FIN may reach the
// exposing side while it still dials its target, before its pipe listens. In one process: a
// loopback TCP socket on one side, an in-memory yamux stream pair on the other.
import { afterEach, describe, expect, it } from "vitest";
import { createServer, connect, type Server, type Socket } from "node:net";
import type { Stream } from "@libp2p/interface";
import { pipeSocketStream, watchRemoteFin, type PipeResult } from "../../lib/p2p/pipe.ts";
import { readHead } from "../../lib/p2p/tunnels.ts";
import { yamuxPair } from "../helpers/streams.ts";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

interface LateRig {
  /** the TCP socket at the far end (the exposed target) */
  peer: Socket;
  /** the stream's remote end (the connect side) */
  remote: Stream;
  /** the agent's end, no pipe on it yet */
  local: Stream;
  /** the agent's socket */
  agentSide: Socket;
  attach(head?: Uint8Array[]): Promise<PipeResult>;
}

async function lateRig(): Promise<LateRig> {
  const muxer = yamuxPair();
  const { outbound, inbound } = await muxer.pair();
  watchRemoteFin(inbound);
  let agentSide: Socket | undefined;
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => (agentSide = s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const peer = connect({ port: (server.address() as { port: number }).port, host: "127.0.0.1", allowHalfOpen: true });
  peer.on("error", () => {});
  await new Promise((r) => peer.once("connect", r));
  await until(() => agentSide !== undefined);
  cleanup.push(
    () => peer.destroy(),
    () => agentSide?.destroy(),
    () => muxer.close(),
    () => new Promise((r) => server.close(r)),
  );
  const counters = { sent: () => {}, received: () => {} };
  return { peer, remote: outbound, local: inbound, agentSide: agentSide!, attach: (head) => pipeSocketStream(agentSide!, inbound, counters, { head }) };
}

async function until(f: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Everything the socket receives, and how it ended: "clean end" or the error's code. */
function watch(s: Socket): { text(): string; outcome: Promise<string> } {
  const chunks: Buffer[] = [];
  s.on("data", (d) => chunks.push(d));
  const outcome = new Promise<string>((resolve) => {
    s.once("end", () => resolve("clean end"));
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    setTimeout(() => resolve("nothing within 3 s"), 3_000);
  });
  return { text: () => Buffer.concat(chunks).toString(), outcome };
}

const bytes = (s: string) => new TextEncoder().encode(s);

describe("a pipe attached after the remote sent and half-closed", () => {
  it("bytes still queued in the stream with the remote's FIN: the socket gets them, then a clean end (not a reset)", async () => {
    const { peer, remote, local, attach } = await lateRig();
    const atPeer = watch(peer);
    remote.send(bytes("request"));
    await remote.close();
    await until(() => local.remoteWriteStatus === "closed");
    const result = attach();
    expect(await atPeer.outcome).toBe("clean end");
    expect(atPeer.text()).toBe("request");
    // the other direction still flows, and both ends closed make a clean close
    const back: Buffer[] = [];
    remote.addEventListener("message", (e) => back.push(Buffer.from(e.data.subarray())));
    peer.end("reply");
    expect(await result).toEqual({ reset: false });
    expect(Buffer.concat(back).toString()).toBe("reply");
  });

  it("tag, bytes and FIN all read by readHead: the rest goes first, then a clean end", async () => {
    const { peer, remote, local, attach } = await lateRig();
    const atPeer = watch(peer);
    remote.send(bytes("TAG"));
    remote.send(bytes("GET /"));
    await remote.close();
    await until(() => local.remoteWriteStatus === "closed");
    const { head, rest } = await readHead(local, 3, AbortSignal.timeout(2_000));
    expect(Buffer.from(head).toString()).toBe("TAG");
    expect(local.readBufferLength).toBe(0);
    const result = attach(rest);
    expect(await atPeer.outcome).toBe("clean end");
    expect(atPeer.text()).toBe("GET /");
    peer.end();
    expect(await result).toEqual({ reset: false });
  });

  // the connect side: the client sent its request and FIN, the provider answered and closed, all
  // before the pipe attached (the status byte and the reply came in one read)
  it("an exchange over before the pipe attached (both FINs, the stream closed): the reply, then a clean end", async () => {
    const { peer, remote, local, agentSide, attach } = await lateRig();
    const atPeer = watch(peer);
    const clientEnded = new Promise((r) => agentSide.once("end", r));
    agentSide.on("data", () => {});
    agentSide.resume();
    peer.end("request");
    await clientEnded;
    agentSide.removeAllListeners("data");
    agentSide.pause();
    await local.close();
    remote.send(bytes("reply"));
    await remote.close();
    await until(() => local.status === "closed");
    expect(await attach()).toEqual({ reset: false });
    expect(await atPeer.outcome).toBe("clean end");
    expect(atPeer.text()).toBe("reply");
  });

  it("the connection gone before the pipe attached (streams closed without FIN): a reset, not a clean end", async () => {
    const muxer = yamuxPair();
    const { outbound, inbound } = await muxer.pair();
    watchRemoteFin(inbound);
    const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => void pipeAfterDrop(s));
    let result: Promise<PipeResult> | undefined;
    const pipeAfterDrop = async (s: Socket) => {
      muxer.connections[1].abort(new Error("connection lost"));
      await until(() => inbound.status !== "open");
      result = pipeSocketStream(s, inbound, { sent: () => {}, received: () => {} });
    };
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanup.push(
      () => muxer.close(),
      () => new Promise((r) => server.close(r)),
    );
    const peer = connect({ port: (server.address() as { port: number }).port, host: "127.0.0.1", allowHalfOpen: true });
    cleanup.push(() => peer.destroy());
    const atPeer = watch(peer);
    expect(await atPeer.outcome).toBe("ECONNRESET");
    expect(outbound.status).not.toBe("open");
    expect(await result).toEqual({ reset: true });
  });

  it("a stream reset before the pipe attached: the socket gets a reset", async () => {
    const { peer, remote, local, attach } = await lateRig();
    const atPeer = watch(peer);
    remote.abort(new Error("gone"));
    await until(() => local.status === "reset");
    expect(await attach()).toEqual({ reset: true });
    expect(await atPeer.outcome).toBe("ECONNRESET");
  });

  it("a socket closed before the pipe attached: the stream is reset", async () => {
    const { peer, remote, attach } = await lateRig();
    const closed = new Promise<Error | undefined>((r) => remote.addEventListener("close", (e) => r(e.error), { once: true }));
    peer.resetAndDestroy();
    // the agent's socket notices only once it reads: the pipe's first read
    const result = attach();
    expect(await closed).toBeInstanceOf(Error);
    expect(await result).toEqual({ reset: true });
  });
});

describe("readHead", () => {
  it("waits for n bytes across messages; what came with them is the rest", async () => {
    const { remote, local } = await lateRig();
    const got = readHead(local, 4, AbortSignal.timeout(2_000));
    remote.send(bytes("ab"));
    await new Promise((r) => setTimeout(r, 20));
    remote.send(bytes("cdef"));
    const { head, rest } = await got;
    expect(Buffer.from(head).toString()).toBe("abcd");
    expect(Buffer.concat(rest).toString()).toBe("ef");
  });

  it("fails when the stream ends first, and on timeout", async () => {
    const { remote, local } = await lateRig();
    remote.send(bytes("ab"));
    await remote.close();
    await expect(readHead(local, 4, AbortSignal.timeout(2_000))).rejects.toThrow(/ended after 2 of 4 bytes/);
    const other = await lateRig();
    await expect(readHead(other.local, 1, AbortSignal.timeout(50))).rejects.toThrow(/timeout|aborted/i);
  });
});
