// endOf (test/helpers/chaos.ts) decides whether a cut transfer counts as a reset or as a silent
// truncation in every chaos suite; Node's own 'end' is not enough for that (see endOf).
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { endOf } from "../helpers/chaos.ts";

const servers: Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

/** A client half-closes at once; the server answers `size` bytes, then ends as told. How does the client see the end? */
async function clientView(size: number, how: "fin" | "reset"): Promise<{ bytes: number; end: string }> {
  const server = createServer({ allowHalfOpen: true }, (s: Socket) => {
    s.on("error", () => {});
    s.on("end", () => {
      s.write(Buffer.alloc(size));
      if (how === "fin") s.end();
      else s.resetAndDestroy(); // drops what the kernel has not sent yet
    });
    s.resume();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const c = connect({ port: (server.address() as { port: number }).port, host: "127.0.0.1", allowHalfOpen: true });
  return new Promise((resolve) => {
    let bytes = 0;
    c.on("data", (d: Buffer) => (bytes += d.length));
    c.on("end", () => (resolve({ bytes, end: endOf(c) }), c.destroy()));
    c.on("error", (err: NodeJS.ErrnoException) => resolve({ bytes, end: err.code ?? "error" }));
    c.end("D");
  });
}

describe("endOf: how a socket really ended", () => {
  it("a FIN after every byte is a clean end", async () => {
    for (let i = 0; i < 5; i++) expect(await clientView(3_000_000, "fin")).toEqual({ bytes: 3_000_000, end: "eof" });
  });

  it("a reset while bytes are in flight is never a clean end, though Node may emit 'end' for it", async () => {
    for (let i = 0; i < 5; i++) {
      const v = await clientView(3_000_000, "reset");
      expect(v.bytes).toBeLessThan(3_000_000);
      expect(v.end).toBe("ECONNRESET");
    }
  });
});
