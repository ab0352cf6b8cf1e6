// Security claims as tests. A relay holds no token: everything it relays for two members is
// recorded here twice, on the wire between agents and relay (a man-in-the-middle TCP proxy that
// keeps every byte) and inside the relay itself after it has decrypted its own hop (the relayed
// streams' bytes, as the relay process reads and writes them); neither holds the application's
// bytes, the service name, the token or the service's tag. A non-member learns no service name
// and opens no tunnel. (A replayed membership proof: test/unit/protocols.test.ts.)
import { createHash, randomBytes } from "node:crypto";
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import pino from "pino";
import { multiaddr } from "@multiformats/multiaddr";
import type { Connection, Stream } from "@libp2p/interface";
import { Agent } from "../../lib/p2p/agent.ts";
import { deriveKeys, newToken, parseToken, serviceTag } from "../../lib/p2p/token.ts";
import { exchange, killAll, runEntangle, tcpServer } from "../helpers/agents.ts";

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await killAll();
});

/** A TCP proxy to `target` that keeps every byte in both directions. */
async function recordingProxy(target: number): Promise<{ port: number; bytes: () => Buffer; server: Server }> {
  const seen: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port: target });
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on("data", (d: Buffer) => (seen.push(Buffer.from(d)), to.write(d)));
      from.on("end", () => to.end());
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  closers.push(() => (sockets.forEach((s) => s.destroy()), new Promise((r) => server.close(r))));
  return { port: (server.address() as { port: number }).port, bytes: () => Buffer.concat(seen), server };
}

/** Every byte a relay reads from or writes to the streams its peers open (after its own Noise hop). */
function recordStreams(conn: Connection, seen: Buffer[]): void {
  const watch = (stream: Stream) => {
    stream.addEventListener("message", (e) => seen.push(Buffer.from(e.data.subarray())));
    const send = stream.send.bind(stream);
    stream.send = (data) => (seen.push(Buffer.from(data.subarray())), send(data));
  };
  const muxer = (conn as unknown as { muxer?: EventTarget }).muxer;
  muxer?.addEventListener("stream", (e) => watch((e as CustomEvent<Stream>).detail));
}

/** Where `needle` occurs in `haystack`, as text or as its raw bytes. */
const leaks = (haystack: Buffer, needles: Record<string, Buffer>) =>
  Object.entries(needles)
    .filter(([, n]) => n.length > 0 && haystack.includes(n))
    .map(([k]) => k);

describe("a relay without the token", () => {
  it("sees only ciphertext: neither on the wire nor inside the relay are the application's bytes, the service name, the token or the tag", async () => {
    // the relay, in this process, so that what it decrypts of its own hop can be recorded
    const relay = new Agent({
      role: { mode: "relay" },
      p2pListen: [multiaddr("/ip4/127.0.0.1/tcp/0")],
      peers: [],
      mdns: false,
      log: pino({ level: "silent" }),
    });
    await relay.start();
    closers.push(() => relay.stop());
    const inside: Buffer[] = [];
    relay.node.addEventListener("connection:open", (e) => recordStreams(e.detail, inside));
    const relayPort = Number(relay.node.getMultiaddrs()[0].toString().split("/tcp/")[1].split("/")[0]);
    const proxy = await recordingProxy(relayPort);

    const token = newToken();
    const service = `billing-db-${randomBytes(6).toString("hex")}`;
    const upMarker = Buffer.from(`UPLOAD-PLAINTEXT-${randomBytes(16).toString("hex")}`);
    const downMarker = Buffer.from(`DOWNLOAD-PLAINTEXT-${randomBytes(16).toString("hex")}`);
    const srv = await tcpServer((s) => {
      const h = createHash("sha256");
      s.on("data", (d) => h.update(d));
      s.on("end", () => s.end(Buffer.concat([downMarker, Buffer.from(h.digest("hex"))])));
      s.on("error", () => {});
    });
    closers.push(() => srv.server.close());
    const peer = ["--peer", `127.0.0.1:${proxy.port}`, "--no-direct"];
    const env = { ENTANGLE_NETWORK_TOKEN: token };
    runEntangle(["agent", "expose", "--service", service, "--target", `127.0.0.1:${srv.port}`, ...peer], env);
    const con = runEntangle(["agent", "connect", "--service", service, "--listen", "127.0.0.1:0", ...peer], env);
    await con.waitMsg("accepting connections", 60_000);
    const port = await con.listenPort();
    expect((await con.waitMsg("member authenticated", 60_000)).path).toBe("relayed");

    const payload = Buffer.concat(Array.from({ length: 2048 }, () => upMarker)); // ~100 KiB
    const r = await exchange(port, payload);
    expect(r.data.subarray(0, downMarker.length)).toEqual(downMarker);
    expect(r.data.subarray(downMarker.length).toString()).toBe(createHash("sha256").update(payload).digest("hex"));

    const t = parseToken(token);
    const keys = deriveKeys(t);
    const needles = {
      "uploaded bytes": upMarker,
      "downloaded bytes": downMarker,
      "service name": Buffer.from(service),
      token: Buffer.from(token),
      "token key": t.secret,
      "token key (base64url)": Buffer.from(t.secret.toString("base64url")),
      "membership key": keys.auth,
      "service tag": Buffer.from(serviceTag(keys, service)),
      "service tag (raw)": Buffer.from(serviceTag(keys, service), "hex"),
    };
    const wire = proxy.bytes();
    const relayed = Buffer.concat(inside);
    console.log(`relay traffic: ${wire.length} bytes on the wire, ${relayed.length} bytes relayed inside the relay; ${payload.length} bytes of payload`);
    // the recordings are real: all of the payload crossed both, only not as plaintext
    expect(wire.length).toBeGreaterThan(payload.length);
    expect(relayed.length).toBeGreaterThan(payload.length);
    expect(leaks(payload, needles)).toEqual(["uploaded bytes"]); // the search finds what is there
    expect(leaks(wire, needles)).toEqual([]);
    expect(leaks(relayed, needles)).toEqual([]);
  }, 90_000);
});

describe("a non-member", () => {
  it("learns no service name or tag and opens no tunnel, though it reaches the provider directly", async () => {
    const srv = await tcpServer((s) => s.end("SECRET-SERVICE-RESPONSE"));
    closers.push(() => srv.server.close());
    const token = newToken();
    const service = `payroll-${randomBytes(6).toString("hex")}`;
    const tag = serviceTag(deriveKeys(parseToken(token)), service);
    const exp = runEntangle(["agent", "expose", "--service", service, "--target", `127.0.0.1:${srv.port}`, "--p2p-listen", "127.0.0.1:0"], {
      ENTANGLE_NETWORK_TOKEN: token,
    });
    await exp.waitMsg("agent started", 60_000); // Node start-up on a loaded machine
    const addr = await exp.p2pAddr();
    // the outsider even guesses the service name right: only the token is missing
    const outsider = runEntangle(["agent", "connect", "--service", service, "--listen", "127.0.0.1:0", "--p2p-listen", "127.0.0.1:0", "--peer", addr], {
      ENTANGLE_NETWORK_TOKEN: newToken(),
      ENTANGLE_LOG_LEVEL: "trace",
    });
    await outsider.waitMsg("accepting connections", 60_000); // Node start-up on a loaded machine
    const port = await outsider.listenPort();
    await outsider.waitFor((l) => l.msg.startsWith("peer refused"), 60_000);
    const r = await exchange(port, Buffer.from("GET / HTTP/1.0\r\n\r\n"));
    expect(r.data.toString()).not.toContain("SECRET-SERVICE-RESPONSE");
    expect(r.error).toBe("ECONNRESET");
    // nothing the outsider logged (at trace level) names a provider, the tag, or a tunnel
    const log = outsider.stderr.join("\n");
    expect(log).not.toContain(tag);
    expect(outsider.lines.some((l) => l.msg === "member authenticated")).toBe(false);
    expect(outsider.lines.filter((l) => l.provides === true)).toEqual([]);
    expect(exp.lines.some((l) => l.msg === "member authenticated")).toBe(false);
    expect(exp.lines.some((l) => String(l.msg).startsWith("tunnel"))).toBe(false);
  }, 120_000);
});
