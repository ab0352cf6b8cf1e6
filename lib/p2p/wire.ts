// Small JSON-over-length-prefixed-frames helper for the control protocols (auth, rendezvous).
// The tunnel data path never goes through here.
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";

export const MAX_CONTROL_MESSAGE = 64 * 1024;

/** The peer sent a frame that breaks the protocol: too long, not JSON, or not a JSON object. */
export class WireError extends Error {}

/** lpStream's framing errors: a length prefix that is malformed or over the limit. */
const FRAMING_ERRORS = new Set(["InvalidMessageLengthError", "InvalidDataLengthError", "InvalidDataLengthLengthError"]);

export interface JsonChannel {
  send(msg: unknown): Promise<void>;
  /** The next message, a JSON object; WireError for a malformed frame, the stream's error otherwise. */
  recv<T extends object>(): Promise<T>;
}

export function jsonChannel(stream: Stream, signal: AbortSignal): JsonChannel {
  const lp = lpStream(stream, { maxDataLength: MAX_CONTROL_MESSAGE });
  return {
    send: (msg) => lp.write(Buffer.from(JSON.stringify(msg)), { signal }),
    recv: async <T extends object>() => {
      let frame;
      try {
        frame = await lp.read({ signal });
      } catch (err) {
        if (FRAMING_ERRORS.has((err as Error).name)) throw new WireError(`frame too long or malformed: ${(err as Error).message}`);
        throw err;
      }
      let msg: unknown;
      try {
        msg = JSON.parse(Buffer.from(frame.subarray()).toString("utf8"));
      } catch {
        throw new WireError(`frame is not JSON (${frame.byteLength} bytes)`);
      }
      if (typeof msg !== "object" || msg === null || Array.isArray(msg))
        throw new WireError(`frame is not a JSON object (${msg === null ? "null" : Array.isArray(msg) ? "a list" : typeof msg})`);
      return msg as T;
    },
  };
}
