// The control protocols (membership proof, rendezvous) on in-memory yamux stream pairs: no
// processes, no sockets. Right key, wrong key, replayed and reflected proofs, proofs bound to
// other peer ids, truncated and garbage frames, half-close and reset.
import { describe, expect, it } from "vitest";
import { createHmac } from "node:crypto";
import { lpStream } from "@libp2p/utils";
import type { Stream } from "@libp2p/interface";
import { MembershipError, proveAsInitiator, proveAsResponder, type Hello } from "../../lib/p2p/membership.ts";
import { RendezvousTable, registerAndDiscover, serveRendezvous, RENDEZVOUS_LIMITS } from "../../lib/p2p/rendezvous.ts";
import { jsonChannel } from "../../lib/p2p/wire.ts";
import { fakeConnection, pairsClosedAfterEach } from "../helpers/streams.ts";

// npm run mutation runs instrumented code on a shared machine: time bounds scale there
const SLOW = Number(process.env.ENTANGLE_TEST_TIME_SCALE ?? 1);
const KEY = Buffer.alloc(32, 1);
const OTHER_KEY = Buffer.alloc(32, 2);
const A = "12D3KooWAlice";
const B = "12D3KooWBob";
const pair = pairsClosedAfterEach();

/** A runs proveAsInitiator, B proveAsResponder; each sees the other's peer id as given. */
async function handshake(opts: { keyA?: Buffer; keyB?: Buffer; helloA?: unknown; helloB?: unknown; bSeesA?: string; aSeesB?: string } = {}) {
  const { outbound, inbound } = await pair();
  const a = proveAsInitiator(
    fakeConnection(opts.aSeesB ?? B, async () => outbound),
    A,
    opts.keyA ?? KEY,
    (opts.helloA ?? { services: ["a1"] }) as Hello,
  );
  const b = proveAsResponder(inbound, fakeConnection(opts.bSeesA ?? A), B, opts.keyB ?? KEY, (opts.helloB ?? { services: ["b1", "b2"] }) as Hello);
  const [ra, rb] = await Promise.allSettled([a, b]);
  return { a: ra, b: rb, outbound, inbound };
}

const mac = (key: Buffer, role: string, initiator: string, responder: string, nInit: Buffer, nResp: Buffer) =>
  createHmac("sha256", key)
    .update(role)
    .update(Buffer.concat([Buffer.from(`entangle-auth-v1\0${initiator}\0${responder}\0`), nInit, nResp]))
    .digest()
    .toString("base64");

/** Frames as raw bytes: a length prefix (unsigned varint) and the payload, or anything else. */
async function sendRaw(stream: Stream, bytes: Uint8Array): Promise<void> {
  if (!stream.send(bytes)) await new Promise((r) => stream.addEventListener("drain", r, { once: true }));
}

function expectRejected(r: PromiseSettledResult<unknown>, message?: RegExp): void {
  expect(r.status).toBe("rejected");
  if (r.status === "rejected" && message) expect(String((r.reason as Error).message)).toMatch(message);
}

describe("membership proof", () => {
  it("same key: each side learns the other's services, and the streams are closed", async () => {
    const { a, b, outbound, inbound } = await handshake();
    expect(a).toEqual({ status: "fulfilled", value: { services: ["b1", "b2"] } });
    expect(b).toEqual({ status: "fulfilled", value: { services: ["a1"] } });
    await new Promise((r) => setTimeout(r, 10));
    expect(outbound.status).toBe("closed");
    expect(inbound.status).toBe("closed");
  });

  it("a different key: both sides refuse, the initiator first, before any service is revealed", async () => {
    const { a, b } = await handshake({ keyB: OTHER_KEY });
    expectRejected(a, /^membership proof failed \(peer holds a different network token\)$/);
    expect((a as PromiseRejectedResult).reason).toBeInstanceOf(MembershipError);
    expectRejected(b, /^remote refused: membership proof failed \(peer holds a different network token\)$/);
    expect((b as PromiseRejectedResult).reason).toBeInstanceOf(MembershipError);
  });

  it("the proofs are bound to both peer ids: a responder that sees another initiator id refuses (a relayed proof)", async () => {
    const { a, b } = await handshake({ bSeesA: "12D3KooWMallory" });
    expectRejected(a, /membership proof failed/);
    expectRejected(b, /membership proof failed/);
    const other = await handshake({ aSeesB: "12D3KooWMallory" });
    expectRejected(other.a, /^membership proof failed \(peer holds a different network token\)$/);
    expectRejected(other.b, /remote refused/);
  });

  it("a recorded initiator proof replayed against a fresh responder nonce is refused", async () => {
    // record a genuine run: the initiator's nonce and the proof it sent
    const nInit = Buffer.alloc(32, 7);
    const first = await pair();
    const responded = proveAsResponder(first.inbound, fakeConnection(A), B, KEY, { services: ["secret-service"] });
    const ch = jsonChannel(first.outbound, AbortSignal.timeout(5_000));
    await ch.send({ nonce: nInit.toString("base64") });
    const reply = await ch.recv<{ nonce: string; mac: string }>();
    const recorded = mac(KEY, "initiator", A, B, nInit, Buffer.from(reply.nonce, "base64"));
    await ch.send({ mac: recorded, hello: { services: [] } });
    expect(await ch.recv()).toEqual({ hello: { services: ["secret-service"] } });
    await responded;

    // the replay: same nonce, same proof; the responder's nonce is new, so the proof is not
    const second = await pair();
    const refused = proveAsResponder(second.inbound, fakeConnection(A), B, KEY, { services: ["secret-service"] });
    const replay = jsonChannel(second.outbound, AbortSignal.timeout(5_000));
    await replay.send({ nonce: nInit.toString("base64") });
    const reply2 = await replay.recv<{ nonce: string }>();
    expect(reply2.nonce).not.toBe(reply.nonce);
    await replay.send({ mac: recorded, hello: { services: [] } });
    expect(await replay.recv()).toEqual({ error: "membership proof failed" });
    await expect(refused).rejects.toThrow(MembershipError);
  });

  it("the responder's own proof reflected back as the initiator's is refused (roles are in the MAC)", async () => {
    const { outbound, inbound } = await pair();
    const refused = proveAsResponder(inbound, fakeConnection(A), B, KEY, { services: ["s"] });
    const ch = jsonChannel(outbound, AbortSignal.timeout(5_000));
    await ch.send({ nonce: Buffer.alloc(32, 3).toString("base64") });
    const reply = await ch.recv<{ mac: string }>();
    await ch.send({ mac: reply.mac, hello: { services: [] } });
    expect(await ch.recv()).toEqual({ error: "membership proof failed" });
    await expect(refused).rejects.toThrow(/^membership proof failed/);
  });

  it("a responder with a wrong proof, or a malformed reply, is refused by the initiator", async () => {
    for (const [answer, why] of [
      [{ nonce: Buffer.alloc(32, 1).toString("base64"), mac: Buffer.alloc(32).toString("base64") }, /^membership proof failed/],
      [{ nonce: Buffer.alloc(32, 1).toString("base64"), mac: "short" }, /^membership proof failed/],
      [{ nonce: Buffer.alloc(32, 1).toString("base64"), mac: 42 }, /^membership proof failed/],
      [{ nonce: Buffer.alloc(31, 1).toString("base64"), mac: "" }, /^malformed membership reply$/],
      [{ mac: "" }, /^malformed membership reply$/],
      [{ error: "go away" }, /^remote refused: go away$/],
    ] as const) {
      const { outbound, inbound } = await pair();
      const proving = proveAsInitiator(
        fakeConnection(B, async () => outbound),
        A,
        KEY,
        { services: ["mine"] },
      );
      const ch = jsonChannel(inbound, AbortSignal.timeout(5_000));
      const first = await ch.recv<{ nonce: string }>();
      expect(Buffer.from(first.nonce, "base64")).toHaveLength(32);
      await ch.send(answer);
      await expect(proving).rejects.toThrow(why);
      expect(outbound.status).not.toBe("open");
    }
  });

  it("the initiator's services are never sent to a responder that failed its proof", async () => {
    const { outbound, inbound } = await pair();
    const proving = proveAsInitiator(
      fakeConnection(B, async () => outbound),
      A,
      KEY,
      { services: ["hidden"] },
    );
    const ch = jsonChannel(inbound, AbortSignal.timeout(5_000));
    await ch.recv();
    await ch.send({ nonce: Buffer.alloc(32, 1).toString("base64"), mac: Buffer.alloc(32).toString("base64") });
    expect(await ch.recv()).toEqual({ error: "membership proof failed" });
    await expect(proving).rejects.toThrow(MembershipError);
  });

  it("a responder that refuses after the proofs: the initiator says so", async () => {
    const { outbound, inbound } = await pair();
    const proving = proveAsInitiator(
      fakeConnection(B, async () => outbound),
      A,
      KEY,
      { services: [] },
    );
    const ch = jsonChannel(inbound, AbortSignal.timeout(5_000));
    const { nonce } = await ch.recv<{ nonce: string }>();
    const nResp = Buffer.alloc(32, 9);
    await ch.send({ nonce: nResp.toString("base64"), mac: mac(KEY, "responder", A, B, Buffer.from(nonce, "base64"), nResp) });
    const second = await ch.recv<{ mac: string; hello: Hello }>();
    expect(second.mac).toBe(mac(KEY, "initiator", A, B, Buffer.from(nonce, "base64"), nResp));
    expect(second.hello).toEqual({ services: [] });
    await ch.send({ error: "too many peers" });
    await expect(proving).rejects.toThrow(/^remote refused: too many peers$/);
  });

  it("the other side's Hello is sanitized: strings only, at most 1024", async () => {
    const many = Array.from({ length: 1030 }, (_, i) => `s${i}`);
    const { a, b } = await handshake({ helloA: { services: [1, "x", null, { y: 1 }, "z"] }, helloB: { services: many } });
    expect(a).toEqual({ status: "fulfilled", value: { services: many.slice(0, 1024) } });
    expect(b).toEqual({ status: "fulfilled", value: { services: ["x", "z"] } });
    const odd = await handshake({ helloA: { services: "not-a-list" }, helloB: "no hello" });
    expect(odd.a).toEqual({ status: "fulfilled", value: { services: [] } });
    expect(odd.b).toEqual({ status: "fulfilled", value: { services: [] } });
  });

  describe("frames the responder must refuse, in milliseconds", () => {
    const cases: Array<[string, (s: Stream) => Promise<void>, RegExp]> = [
      ["garbage bytes (not JSON)", (s) => sendRaw(s, Uint8Array.from([5, 0xff, 0xfe, 0x00, 0x7b, 0x22])), /JSON/],
      ["a short nonce", async (s) => jsonChannel(s, AbortSignal.timeout(5_000)).send({ nonce: "AAAA" }), /^malformed membership request$/],
      ["no nonce", async (s) => jsonChannel(s, AbortSignal.timeout(5_000)).send({ hello: { services: [] } }), /^malformed membership request$/],
      [
        "a frame over 64 KiB",
        (s) => sendRaw(s, Uint8Array.from([0x81, 0x80, 0x04, ...Buffer.alloc(100)])), // length 65537
        /length|too long|max/i,
      ],
      [
        "a truncated frame, then the writer closes",
        async (s) => {
          await sendRaw(s, Uint8Array.from([40, 0x7b, 0x22, 0x6e]));
          await s.close();
        },
        /end|closed|unexpected/i,
      ],
      ["nothing, then the writer closes (half-close)", (s) => s.close(), /end|closed|unexpected/i],
      [
        "a reset",
        async (s) => {
          s.abort(new Error("boom"));
        },
        /reset|abort|closed|boom/i,
      ],
    ];
    for (const [name, act, why] of cases) {
      it(name, async () => {
        const { outbound, inbound } = await pair();
        const t0 = Date.now();
        const refused = proveAsResponder(inbound, fakeConnection(A), B, KEY, { services: ["s"] });
        await act(outbound);
        await expect(refused).rejects.toThrow(why);
        expect(Date.now() - t0).toBeLessThan(1_000 * SLOW);
        expect(inbound.status).not.toBe("open");
      });
    }

    it("an initiator that half-closes after its nonce: refused, and the responder's services stay unsent", async () => {
      const { outbound, inbound } = await pair();
      const refused = proveAsResponder(inbound, fakeConnection(A), B, KEY, { services: ["hidden"] });
      const ch = jsonChannel(outbound, AbortSignal.timeout(5_000));
      const seen: string[] = [];
      outbound.addEventListener("message", (e) => seen.push(Buffer.from(e.data.subarray()).toString()));
      await ch.send({ nonce: Buffer.alloc(32, 4).toString("base64") });
      await outbound.close();
      await expect(refused).rejects.toThrow();
      expect(seen.join("")).not.toContain("hidden");
    });
  });

  it("the initiator refuses garbage and a reset from the responder", async () => {
    for (const act of [(s: Stream) => sendRaw(s, Uint8Array.from([3, 0x01, 0x02, 0x03])), async (s: Stream) => s.abort(new Error("gone"))]) {
      const { outbound, inbound } = await pair();
      const proving = proveAsInitiator(
        fakeConnection(B, async () => outbound),
        A,
        KEY,
        { services: [] },
      );
      await lpStream(inbound).read();
      await act(inbound);
      await expect(proving).rejects.toThrow();
    }
  });
});

describe("rendezvous", () => {
  const NS = "ab".repeat(32);

  async function register(table: RendezvousTable, id: string, ns: unknown, addrs: unknown, ip = "10.0.0.7") {
    const { outbound, inbound } = await pair();
    const served = serveRendezvous(table, inbound, fakeConnection(id, undefined, `/${ip.includes(":") ? "ip6" : "ip4"}/${ip}/tcp/4001`));
    const asked = registerAndDiscover(
      fakeConnection("relay", async () => outbound),
      ns as string,
      addrs as string[],
    );
    const [r] = await Promise.allSettled([asked, served]);
    return r;
  }

  it("members in one namespace learn each other; the relay keeps them apart from other namespaces", async () => {
    const table = new RendezvousTable();
    expect(await register(table, A, NS, ["/ip4/1.2.3.4/tcp/1"])).toEqual({ status: "fulfilled", value: [] });
    expect(await register(table, "12D3KooWOther", "cd".repeat(32), ["/ip4/9.9.9.9/tcp/1"])).toEqual({ status: "fulfilled", value: [] });
    expect(await register(table, B, NS, ["/ip4/5.6.7.8/tcp/2"])).toEqual({ status: "fulfilled", value: [{ id: A, addrs: ["/ip4/1.2.3.4/tcp/1"] }] });
    // A refreshes and now sees B; its own entry is never returned to it
    expect(await register(table, A, NS, ["/ip4/1.2.3.4/tcp/1"])).toEqual({ status: "fulfilled", value: [{ id: B, addrs: ["/ip4/5.6.7.8/tcp/2"] }] });
  });

  it("addresses: strings under 512 characters only, at most 16 kept", async () => {
    const table = new RendezvousTable();
    const addrs = [42, "x".repeat(512), "ok", null, ...Array.from({ length: 20 }, (_, i) => `a${i}`)];
    await register(table, A, NS, addrs);
    const r = await register(table, B, NS, "not-a-list");
    expect(r).toEqual({ status: "fulfilled", value: [{ id: A, addrs: ["ok", ...Array.from({ length: 15 }, (_, i) => `a${i}`)] }] });
    expect(await register(table, "12D3KooWThird", NS, [])).toMatchObject({ value: [{ id: A }, { id: B, addrs: [] }] });
  });

  it("a namespace that is not 64 hex characters is refused: the stream is reset, the table unchanged", async () => {
    const table = new RendezvousTable();
    // [NS] reads as NS when made a string: only a string is a namespace
    for (const ns of ["AB".repeat(32), "ab".repeat(31), "ab".repeat(33), 7, "zz".repeat(32), undefined, [NS]])
      expect((await register(table, A, ns, [])).status, String(ns)).toBe("rejected");
    expect(await register(table, B, NS, [])).toEqual({ status: "fulfilled", value: [] });
  });

  it("the per-address limit counts the IP the relay sees, not the peer id", async () => {
    const table = new RendezvousTable();
    for (let i = 0; i < RENDEZVOUS_LIMITS.namespacesPerSource; i++)
      expect((await register(table, `12D3KooWSybil${i}`, i.toString(16).padStart(64, "0"), [], "192.0.2.1")).status).toBe("fulfilled");
    expect((await register(table, "12D3KooWSybilX", "f".repeat(64), [], "192.0.2.1")).status).toBe("rejected");
    expect((await register(table, "12D3KooWHonest", "f".repeat(64), [], "192.0.2.2")).status).toBe("fulfilled");
  });

  it("the per-address limit counts IPv6 sources too", async () => {
    const table = new RendezvousTable();
    for (let i = 0; i < RENDEZVOUS_LIMITS.namespacesPerSource; i++)
      expect((await register(table, `12D3KooWSybil${i}`, i.toString(16).padStart(64, "0"), [], "2001:db8::1")).status).toBe("fulfilled");
    expect((await register(table, "12D3KooWSybilX", "f".repeat(64), [], "2001:db8::1")).status).toBe("rejected");
  });

  it("IPv6 sources are counted per /64, not per port", async () => {
    const table = new RendezvousTable();
    for (let i = 0; i < RENDEZVOUS_LIMITS.namespacesPerSource; i++)
      expect((await register(table, `12D3KooWSybil${i}`, i.toString(16).padStart(64, "0"), [], "2001:db8::1")).status).toBe("fulfilled");
    expect((await register(table, "12D3KooWHonest", "f".repeat(64), [], "2001:db8:1::2")).status).toBe("fulfilled");
  });

  it("only a malformed request is reported as such (the relay cuts that peer off), never a reset or a half-close", async () => {
    const reported: string[] = [];
    const serve = async (act: (s: Stream) => Promise<void>) => {
      const { outbound, inbound } = await pair();
      const served = serveRendezvous(new RendezvousTable(), inbound, fakeConnection(A), (err) => reported.push(err.message));
      await act(outbound);
      await served;
    };
    await serve((s) => jsonChannel(s, AbortSignal.timeout(5_000)).send({ ns: "nope", addrs: [] }));
    expect(reported).toEqual(["bad namespace"]);
    await serve(async (s) => s.abort(new Error("gone")));
    await serve((s) => s.close());
    expect(reported).toEqual(["bad namespace"]);
    await serve((s) => sendRaw(s, Uint8Array.from([2, 0xc3, 0x28])));
    expect(reported).toHaveLength(2);
    expect(reported[1]).toMatch(/^frame is not JSON/);
  });

  it("the relay ends its side of the stream after answering", async () => {
    const { outbound, inbound } = await pair();
    const served = serveRendezvous(new RendezvousTable(), inbound, fakeConnection(A));
    expect(
      await registerAndDiscover(
        fakeConnection("relay", async () => outbound),
        NS,
        [],
      ),
    ).toEqual([]);
    await served;
    expect(inbound.writeStatus).toBe("closed");
  });

  it("garbage, a truncated request, a half-close and a reset: the relay resets the stream and stays usable", async () => {
    const table = new RendezvousTable();
    const acts: Array<(s: Stream) => Promise<void>> = [
      (s) => sendRaw(s, Uint8Array.from([2, 0xc3, 0x28])),
      async (s) => {
        await sendRaw(s, Uint8Array.from([50, 0x7b]));
        await s.close();
      },
      (s) => s.close(),
      async (s) => s.abort(new Error("gone")),
    ];
    for (const act of acts) {
      const { outbound, inbound } = await pair();
      const t0 = Date.now();
      const served = serveRendezvous(table, inbound, fakeConnection(A));
      await act(outbound);
      await served; // never throws: the relay serves many
      expect(Date.now() - t0).toBeLessThan(1_000 * SLOW);
      expect(inbound.status).not.toBe("open");
    }
    expect(await register(table, B, NS, [])).toEqual({ status: "fulfilled", value: [] });
  });

  it("a member drops malformed peers from the relay's answer, and refuses garbage", async () => {
    const answers: Array<[unknown, unknown]> = [
      [{ peers: [{ id: A, addrs: ["x"] }, { id: 5, addrs: [] }, { id: B }, null, { id: "c", addrs: "no" }] }, [{ id: A, addrs: ["x"] }]],
      [{ peers: "nope" }, []],
      [{}, []],
    ];
    for (const [answer, want] of answers) {
      const { outbound, inbound } = await pair();
      const asked = registerAndDiscover(
        fakeConnection("relay", async () => outbound),
        NS,
        [],
      );
      const ch = jsonChannel(inbound, AbortSignal.timeout(5_000));
      expect(await ch.recv()).toEqual({ ns: NS, addrs: [] });
      await ch.send(answer);
      expect(await asked).toEqual(want);
    }
    const { outbound, inbound } = await pair();
    const asked = registerAndDiscover(
      fakeConnection("relay", async () => outbound),
      NS,
      [],
    );
    await lpStream(inbound).read();
    await sendRaw(inbound, Uint8Array.from([1, 0x7d]));
    await expect(asked).rejects.toThrow();
    expect(outbound.status).not.toBe("open");
  });
});
