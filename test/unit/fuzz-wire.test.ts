// Property-based tests (fast-check) of the control protocols' wire framing, on in-memory yamux
// stream pairs (test/helpers/streams.ts): whatever a peer sends (random bytes, frames of any
// JSON, proofs with fields of any type, length prefixes up to 2^53), each side ends with the
// intended error (MembershipError for a malformed or wrong message, WireError from the framing,
// or the stream's own end/reset error), never a TypeError or a hang, and reveals nothing it
// should not. The hand-picked cases (right/wrong key, replay, half-close, reset) are in
// protocols.test.ts. FUZZ_RUNS=N runs more.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";
import { MembershipError, proveAsInitiator, proveAsResponder } from "../../lib/p2p/membership.ts";
import { RendezvousTable, registerAndDiscover, serveRendezvous } from "../../lib/p2p/rendezvous.ts";
import { jsonChannel, MAX_CONTROL_MESSAGE, WireError } from "../../lib/p2p/wire.ts";
import { fakeConnection, pairsClosedAfterEach } from "../helpers/streams.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const KEY = Buffer.alloc(32, 7);
const A = "12D3KooWFuzzInitiator";
const B = "12D3KooWFuzzResponder";
const NS = "ab".repeat(32);
/** What a stream that ended, was reset or timed out rejects with: libp2p's names. */
const STREAM_ENDS = new Set([
  "UnexpectedEOFError",
  "StreamResetError",
  "StreamStateError",
  "StreamClosedError",
  "StreamAbortedError",
  "AbortError",
  "TimeoutError",
]);

const pair = pairsClosedAfterEach();

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push(n % 0x80 | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const frame = (payload: Uint8Array) => Uint8Array.from([...varint(payload.length), ...payload]);

/** Writes what it can: the other side may already have reset the stream (then no drain comes). */
async function sendAll(stream: Stream, chunks: Uint8Array[]): Promise<void> {
  for (const c of chunks) {
    if (c.length === 0) continue; // an empty write never drains
    try {
      if (!stream.send(c)) {
        const drained = new Promise((r) => (stream.addEventListener("drain", r, { once: true }), stream.addEventListener("close", r, { once: true })));
        await within(settle(drained), 500);
      }
    } catch {
      return;
    }
  }
}

/** Everything the other end writes to `stream`, as text. */
function received(stream: Stream): () => string {
  const seen: Buffer[] = [];
  stream.addEventListener("message", (e) => seen.push(Buffer.from(e.data.subarray())));
  return () => Buffer.concat(seen).toString("latin1");
}

/** A promise's outcome, taken at once: no unhandled rejection while the test still writes. */
const settle = <T>(p: Promise<T>): Promise<PromiseSettledResult<T>> => Promise.allSettled([p]).then(([r]) => r);

/** The outcome, or a failure after `ms`: a hang is a failure. */
async function within<T>(outcome: Promise<PromiseSettledResult<T>>, ms: number): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms)));
  try {
    return await Promise.race([outcome, hang]);
  } finally {
    clearTimeout(timer);
  }
}

function expectIntendedError(r: PromiseSettledResult<unknown>, allowed: Array<new (...a: never[]) => Error>): void {
  expect(r.status).toBe("rejected");
  const err = (r as PromiseRejectedResult).reason as Error;
  const ok = allowed.some((c) => err instanceof c) || STREAM_ENDS.has(err?.name);
  if (!ok) throw new Error(`unintended error ${err?.name}: ${err?.message}`);
}

// ---- arbitraries ----------------------------------------------------------------------------

const b64 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString("base64"));
const field = fc.oneof(b64(32), b64(16), fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 300 }));
/** Messages shaped like the protocols' own, with fields of any type. */
const msg = fc.oneof(
  fc.record(
    { nonce: field, mac: field, hello: fc.oneof(fc.record({ services: fc.jsonValue({ maxDepth: 2 }) }), fc.jsonValue({ maxDepth: 2 })), error: field },
    { requiredKeys: [] },
  ),
  fc.record(
    { ns: fc.oneof(fc.constant(NS), fc.stringMatching(/^[0-9a-f]{64}$/), fc.jsonValue({ maxDepth: 1 })), addrs: fc.jsonValue({ maxDepth: 2 }) },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      peers: fc.oneof(
        fc.array(fc.record({ id: fc.jsonValue({ maxDepth: 1 }), addrs: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] })),
        fc.jsonValue({ maxDepth: 2 }),
      ),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 3 }),
);
const chunk = fc.oneof(
  { weight: 4, arbitrary: msg.map((m) => frame(Buffer.from(JSON.stringify(m) ?? "null"))) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map(frame) },
  // a length prefix over the limit (up to 2^53), and a few bytes of the promised body
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: MAX_CONTROL_MESSAGE + 1, max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ maxLength: 8 }))
      .map(([n, b]) => Uint8Array.from([...varint(n), ...b])),
  },
  // a truncated frame: the prefix promises more than follows
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 2, max: 500 }), fc.uint8Array({ maxLength: 1 })).map(([n, b]) => Uint8Array.from([...varint(n), ...b])) },
);
const chunks = fc.array(chunk, { minLength: 0, maxLength: 4 });
/** How the hostile side ends: half-close (it writes no more) or reset. */
const ending = fc.constantFrom("close", "abort");
const end = async (s: Stream, how: string) =>
  how === "close" ? void (await within(settle(s.close()), 5_000).catch(() => {})) : s.abort(new Error("hostile peer gone"));

/** Whether the stream is still open after both ends closed: the peer's close reaches it a moment
 * later through the in-memory queue, so give it up to a second. */
async function leftOpen(s: Stream): Promise<boolean> {
  for (let i = 0; i < 100 && s.status === "open"; i++) await new Promise((r) => setTimeout(r, 10));
  return s.status === "open";
}

describe("membership framing (fuzzed)", () => {
  it("a responder fed anything refuses with the intended error, without waiting for its timeout or revealing its services", async () => {
    await fc.assert(
      fc.asyncProperty(chunks, ending, async (sent, how) => {
        const { outbound, inbound } = await pair();
        const got = received(outbound);
        const refused = settle(proveAsResponder(inbound, fakeConnection(A), B, KEY, { services: ["HIDDEN-SERVICE-TAG"] }));
        await sendAll(outbound, sent);
        await end(outbound, how);
        // well before the protocol's own 10 s timeout: refused by what it got, not timed out
        const r = await within(refused, 5_000);
        expectIntendedError(r, [MembershipError]);
        expect(got()).not.toContain("HIDDEN-SERVICE-TAG");
        expect(await leftOpen(inbound)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it("an initiator answered with anything refuses with the intended error and never sends its services", async () => {
    await fc.assert(
      fc.asyncProperty(chunks, ending, async (sent, how) => {
        const { outbound, inbound } = await pair();
        const got = received(inbound);
        const proving = settle(
          proveAsInitiator(
            fakeConnection(B, async () => outbound),
            A,
            KEY,
            { services: ["SECRET-SERVICE-TAG"] },
          ),
        );
        await lpStream(inbound).read(); // its nonce
        await sendAll(inbound, sent);
        await end(inbound, how);
        const r = await within(proving, 5_000);
        expectIntendedError(r, [MembershipError]);
        expect(got()).not.toContain("SECRET-SERVICE-TAG");
      }),
      { numRuns: RUNS },
    );
  });

  it("a malformed frame is a MembershipError (refused and logged as such), never a TypeError or SyntaxError", async () => {
    const cases: Uint8Array[] = [
      frame(Buffer.from("null")),
      frame(Buffer.from("[1,2]")),
      frame(Buffer.from('"nonce"')),
      frame(Buffer.from("7")),
      frame(Buffer.from("{not json")),
      Uint8Array.from([...varint(2 ** 40), 1, 2, 3]),
    ];
    for (const bytes of cases) {
      const { outbound, inbound } = await pair();
      const refused = settle(proveAsResponder(inbound, fakeConnection(A), B, KEY, { services: [] }));
      await sendAll(outbound, [bytes]);
      const r = await within(refused, 5_000);
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(MembershipError);
      expect(((r as PromiseRejectedResult).reason as Error).message).toMatch(
        /^malformed membership message: frame (is not JSON|is not a JSON object|too long)/,
      );
    }
  });
});

describe("rendezvous framing (fuzzed)", () => {
  it("a relay fed anything never throws, answers only a well-formed request, and keeps serving", async () => {
    const table = new RendezvousTable();
    let registered = 0;
    await fc.assert(
      fc.asyncProperty(chunks, ending, async (sent, how) => {
        const { outbound, inbound } = await pair();
        const got = received(outbound);
        const served = settle(serveRendezvous(table, inbound, fakeConnection(`12D3KooWFuzz${registered}`, undefined, "/ip4/192.0.2.9/tcp/1")));
        await sendAll(outbound, sent);
        await end(outbound, how);
        const r = await within(served, 5_000);
        expect(r.status).toBe("fulfilled"); // the relay serves many: a bad stream never throws
        const answer = got();
        if (answer !== "") {
          // the only thing it ever writes: the other registrants of a valid namespace
          expect(answer).toMatch(/"peers":\[/);
          registered++;
        }
        expect(await leftOpen(inbound)).toBe(false);
      }),
      { numRuns: RUNS },
    );
    // still usable by an honest member
    const { outbound, inbound } = await pair();
    const served = serveRendezvous(table, inbound, fakeConnection("12D3KooWHonest"));
    const found = await registerAndDiscover(
      fakeConnection("relay", async () => outbound),
      NS,
      ["/ip4/127.0.0.1/tcp/1"],
    );
    await served;
    expect(Array.isArray(found)).toBe(true);
  });

  it("a member answered with anything by a relay gets well-formed registrations or the intended error", async () => {
    await fc.assert(
      fc.asyncProperty(chunks, ending, async (sent, how) => {
        const { outbound, inbound } = await pair();
        const asked = settle(
          registerAndDiscover(
            fakeConnection("relay", async () => outbound),
            NS,
            [],
          ),
        );
        await lpStream(inbound).read();
        await sendAll(inbound, sent);
        await end(inbound, how);
        const r = await within(asked, 5_000);
        if (r.status === "rejected") return expectIntendedError(r, [WireError]);
        for (const reg of r.value) {
          expect(typeof reg.id).toBe("string");
          expect(Array.isArray(reg.addrs)).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("length prefixes (fuzzed)", () => {
  it("a frame longer than 64 KiB, up to 2^53, is refused from its prefix alone: nothing of that size is awaited or kept", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: MAX_CONTROL_MESSAGE + 1, max: Number.MAX_SAFE_INTEGER }), async (n) => {
        const { outbound, inbound } = await pair();
        const before = process.memoryUsage().arrayBuffers;
        const reading = settle(jsonChannel(inbound, AbortSignal.timeout(5_000)).recv());
        await sendAll(outbound, [Uint8Array.from(varint(n))]); // the stream stays open: no EOF to end it
        const r = await within(reading, 5_000);
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(WireError);
        expect(((r as PromiseRejectedResult).reason as Error).message).toMatch(/too long/);
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(MAX_CONTROL_MESSAGE * 4);
      }),
      { numRuns: Math.max(10, RUNS / 3) },
    );
  });
});
