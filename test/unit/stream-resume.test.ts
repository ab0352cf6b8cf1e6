// A yamux stream paused again while resume() hands it its buffered data must stay paused on the
// wire: the window is granted only for what it took (patches/@chainsafe+libp2p-yamux+*.patch,
// test/unit/bulk-path.test.ts), so the sender stops after one more window and the read buffer
// stays bounded. @libp2p/utils 7.4.1 sent the resume window update after that nested pause
// (patches/@libp2p+utils+*.patch): the sender kept going, the read buffer passed
// maxReadBufferLength and the stream was reset mid-transfer (a 64 MiB download through the
// tunnel arrived truncated).
import { describe, expect, it } from "vitest";
import { yamux } from "@chainsafe/libp2p-yamux";
import { multiaddrConnectionPair } from "@libp2p/utils";
import type { Stream, StreamMuxer } from "@libp2p/interface";
import { pump } from "../helpers/streams.ts";

const WINDOW = 256 * 1024;

function muxers(): [StreamMuxer, StreamMuxer] {
  const factory = yamux({
    enableKeepAlive: false,
    streamOptions: { initialStreamWindowSize: WINDOW, maxStreamWindowSize: WINDOW, maxReadBufferLength: 2 * WINDOW, inactivityTimeout: 0 },
  })();
  const [a, b] = multiaddrConnectionPair();
  return [factory.createStreamMuxer(a), factory.createStreamMuxer(b)];
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("yamux stream pause inside resume", () => {
  it("a reader that pauses while resume() dispatches stays paused, bounded, and gets every byte", async () => {
    const [ma, mb] = muxers();
    const incoming = new Promise<Stream>((resolve) => mb.addEventListener("stream", (e) => resolve(e.detail), { once: true }));
    const out = await ma.createStream();
    const sink = await incoming;
    let received = 0;
    let pauseNext = true;
    sink.addEventListener("message", (e) => {
      received += e.data.byteLength;
      // like a socket whose write() returned false: pause on the first delivery after resume
      if (pauseNext) {
        pauseNext = false;
        sink.pause();
      }
    });
    sink.pause();
    const total = 16 * WINDOW;
    const sent = pump(out, total, 64 * 1024);
    await tick();
    sink.resume(); // dispatches the buffered window; the listener pauses again inside
    for (let i = 0; i < 40; i++) await tick();
    expect(sink.status).toBe("open");
    expect(sink.readStatus).toBe("paused");
    expect(sink.readBufferLength).toBeLessThanOrEqual(WINDOW);
    expect(sent()).toBeLessThan(total);
    // now read normally: every byte arrives
    sink.resume();
    const deadline = Date.now() + 5_000;
    while (received < total && Date.now() < deadline) await tick();
    expect(received).toBe(total);
    expect(sink.status).toBe("open");
    await ma.close();
    await mb.close();
  });
});
