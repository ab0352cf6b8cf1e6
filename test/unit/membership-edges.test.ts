// lib/p2p/membership.ts edges the mutation run found untested: the protocol id and stream
// options, malformed frames surfacing as MembershipError, a refusal text bounded, a Hello left
// out entirely.
import { describe, expect, it } from "vitest";
import type { Connection } from "@libp2p/interface";
import { AUTH_PROTOCOL, MembershipError, proveAsInitiator, proveAsResponder, type Hello } from "../../lib/p2p/membership.ts";
import { jsonChannel } from "../../lib/p2p/wire.ts";
import { fakeConnection, pairsClosedAfterEach } from "../helpers/streams.ts";

const KEY = Buffer.alloc(32, 1);
const A = "12D3KooWAlice";
const B = "12D3KooWBob";
const pair = pairsClosedAfterEach();

describe("membership edges", () => {
  it("the initiator opens the auth protocol, on limited (relayed) connections too", async () => {
    const asked: unknown[] = [];
    const conn = {
      remotePeer: { toString: () => B },
      newStream: async (protocol: string, options: object) => {
        asked.push({ protocol, options });
        throw new Error("no stream here");
      },
    } as unknown as Connection;
    await expect(proveAsInitiator(conn, A, KEY, { services: [] })).rejects.toThrow("no stream here");
    expect(AUTH_PROTOCOL).toBe("/entangle/auth/1.0.0");
    expect(asked).toEqual([{ protocol: "/entangle/auth/1.0.0", options: { signal: expect.any(AbortSignal), runOnLimitedConnection: true } }]);
  });

  it("a malformed frame is a MembershipError naming the frame's fault", async () => {
    const { outbound, inbound } = await pair();
    const refused = proveAsResponder(inbound, fakeConnection(A), B, KEY, { services: [] }).catch((e: Error) => e);
    await jsonChannel(outbound, AbortSignal.timeout(5_000)).send([] as unknown as object);
    const err = await refused;
    expect(err).toBeInstanceOf(MembershipError);
    expect((err as Error).message).toBe("malformed membership message: frame is not a JSON object (a list)");
  });

  it("the other side's refusal lands in our message cut to 200 characters", async () => {
    const { outbound, inbound } = await pair();
    const proving = proveAsInitiator(
      fakeConnection(B, async () => outbound),
      A,
      KEY,
      { services: [] },
    ).catch((e: Error) => e);
    const ch = jsonChannel(inbound, AbortSignal.timeout(5_000));
    await ch.recv();
    await ch.send({ error: "e".repeat(1000) });
    const err = await proving;
    expect(err).toBeInstanceOf(MembershipError);
    expect((err as Error).message).toBe(`remote refused: ${"e".repeat(200)}`);
  });

  it("a Hello left out is no services, not a crash", async () => {
    const { outbound, inbound } = await pair();
    const a = proveAsInitiator(
      fakeConnection(B, async () => outbound),
      A,
      KEY,
      undefined as unknown as Hello,
    );
    const b = proveAsResponder(inbound, fakeConnection(A), B, KEY, undefined as unknown as Hello);
    expect(await Promise.all([a, b])).toEqual([{ services: [] }, { services: [] }]);
  });
});
