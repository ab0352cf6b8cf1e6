// lib/p2p/wire.ts on an in-memory yamux stream pair: what recv accepts, the WireError for each
// kind of bad frame (with its exact words), the stream's own errors and the caller's abort
// passed through.
import { describe, expect, it } from "vitest";
import { lpStream } from "@libp2p/utils";
import { MAX_CONTROL_MESSAGE, WireError, jsonChannel } from "../../lib/p2p/wire.ts";
import { pairsClosedAfterEach } from "../helpers/streams.ts";

const pair = pairsClosedAfterEach();
const signal = () => AbortSignal.timeout(5_000);

async function refusalOf(frame: Uint8Array): Promise<Error> {
  const { outbound, inbound } = await pair();
  const received = jsonChannel(inbound, signal())
    .recv()
    .then(
      (v) => new Error(`accepted ${JSON.stringify(v)}`),
      (e: Error) => e,
    );
  await lpStream(outbound).write(frame);
  return received;
}

describe("jsonChannel", () => {
  it("sends and receives JSON objects, in order, up to the limit", async () => {
    const { outbound, inbound } = await pair();
    const a = jsonChannel(outbound, signal());
    const b = jsonChannel(inbound, signal());
    await a.send({ n: 1, s: "x" });
    await a.send({ big: "y".repeat(MAX_CONTROL_MESSAGE - 20) });
    expect(await b.recv()).toEqual({ n: 1, s: "x" });
    expect(((await b.recv()) as { big: string }).big).toHaveLength(MAX_CONTROL_MESSAGE - 20);
    await b.send({ back: true });
    expect(await a.recv()).toEqual({ back: true });
    expect(MAX_CONTROL_MESSAGE).toBe(65536);
  });

  it("a frame that is not JSON, or JSON but not an object: WireError saying what it was", async () => {
    const cases: Array<[string, string]> = [
      ["not json", "frame is not JSON (8 bytes)"],
      ["", "frame is not JSON (0 bytes)"],
      ["null", "frame is not a JSON object (null)"],
      ["[1,2]", "frame is not a JSON object (a list)"],
      ["42", "frame is not a JSON object (number)"],
      ['"s"', "frame is not a JSON object (string)"],
      ["true", "frame is not a JSON object (boolean)"],
    ];
    for (const [text, message] of cases) {
      const err = await refusalOf(Buffer.from(text));
      expect(err, text).toBeInstanceOf(WireError);
      expect(err.message, text).toBe(message);
    }
  });

  it("a frame over 64 KiB: WireError, before its body is read", async () => {
    const { outbound, inbound } = await pair();
    const received = jsonChannel(inbound, signal()).recv();
    // only the length prefix (65537) is sent: refused on the prefix alone
    outbound.send(Uint8Array.from([0x81, 0x80, 0x04]));
    const err = await received.catch((e: Error) => e);
    expect(err).toBeInstanceOf(WireError);
    expect((err as Error).message).toMatch(/^frame too long or malformed: Message length too long - 65537 > 65536$/);
  });

  it("the stream's own errors (end, reset, abort) pass through: not WireErrors", async () => {
    {
      const { outbound, inbound } = await pair();
      const received = jsonChannel(inbound, signal()).recv();
      await outbound.close();
      const err = await received.catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(WireError);
    }
    {
      const { outbound, inbound } = await pair();
      const received = jsonChannel(inbound, signal()).recv();
      outbound.abort(new Error("boom"));
      const err = await received.catch((e: Error) => e);
      expect(err).not.toBeInstanceOf(WireError);
    }
    {
      const { inbound } = await pair();
      const ctl = new AbortController();
      const received = jsonChannel(inbound, ctl.signal).recv();
      ctl.abort(new Error("caller gave up"));
      const err = await received.catch((e: Error) => e);
      expect(err).not.toBeInstanceOf(WireError);
      expect(String((err as Error).message)).toMatch(/abort|gave up/i);
    }
  });
});
