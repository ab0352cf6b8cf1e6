// Small JSON-over-length-prefixed-frames helper for the control protocols (auth, rendezvous).
// The tunnel data path never goes through here.
import type { Stream } from "@libp2p/interface";
import { lpStream } from "@libp2p/utils";

const MAX_CONTROL_MESSAGE = 64 * 1024;

export interface JsonChannel {
  send(msg: unknown): Promise<void>;
  recv<T>(): Promise<T>;
}

export function jsonChannel(stream: Stream, signal: AbortSignal): JsonChannel {
  const lp = lpStream(stream, { maxDataLength: MAX_CONTROL_MESSAGE });
  return {
    send: (msg) => lp.write(Buffer.from(JSON.stringify(msg)), { signal }),
    recv: async <T>() => JSON.parse(Buffer.from((await lp.read({ signal })).subarray()).toString("utf8")) as T,
  };
}
