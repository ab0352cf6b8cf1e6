// The bundled agent (hack/build-agent.ts), as the image runs it: a tunnel works end to end, and
// the DHT, kept in its own file and loaded only when asked for, is found next to it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, readdirSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { httpGet, killAll, runEntangle } from "../helpers/agents.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
let out: string;
let entry: string;
let http: Server;
let httpPort: number;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), "entangle-bundle-"));
  execFileSync(process.execPath, ["hack/build-agent.ts", out], { stdio: "pipe" });
  entry = join(out, "entangle.mjs");
  http = createHttpServer((req, res) => res.end(`bundled ${req.url}`));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  httpPort = (http.address() as { port: number }).port;
}, 120_000);
afterAll(() => {
  http?.close();
  rmSync(out, { recursive: true, force: true });
});
afterEach(() => killAll());

describe("the bundled agent", () => {
  it("is a few files and needs no node_modules", () => {
    const files = readdirSync(out).filter((f) => f.endsWith(".mjs"));
    expect(files).toContain("entangle.mjs");
    expect(files).toContain("dht-services.mjs");
  });

  it("holds one copy of each version of uint8arrays and protons-runtime, and one uint8arraylist", () => {
    // esbuild bundles by path: npm's many identical nested copies would each be a class of its own
    const dirs = new Map<string, Set<string>>();
    for (const f of readdirSync(out).filter((f) => f.endsWith(".mjs")))
      for (const [, dir, name] of readFileSync(join(out, f), "utf8").matchAll(
        /^\/\/ (node_modules\/(?:.*\/)?(uint8arraylist|uint8arrays|protons-runtime))\/dist\//gm,
      )) {
        const version = (JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as { version: string }).version;
        const key = name === "uint8arraylist" ? name : `${name}@${version}`;
        dirs.set(key, (dirs.get(key) ?? new Set()).add(dir));
      }
    expect(dirs.get("uint8arraylist")?.size).toBe(1);
    for (const [key, copies] of dirs) expect([key, copies.size]).toEqual([key, 1]);
  });

  it("tunnels HTTP between an exposing and a connecting agent", async () => {
    const env = { ENTANGLE_NETWORK_TOKEN: newToken() };
    const exp = runEntangle(["agent", "expose", "--service", "web", "--target", `127.0.0.1:${httpPort}`, "--p2p-listen", "127.0.0.1:0"], env, entry);
    const con = runEntangle(["agent", "connect", "--service", "web", "--listen", "127.0.0.1:0", "--peer", await exp.p2pAddr()], env, entry);
    const port = await con.listenPort();
    await con.waitMsg("member authenticated", 20_000);
    for (const path of ["/a", "/b", "/c"]) expect((await httpGet(port, path)).body).toBe(`bundled ${path}`);
  }, 40_000);

  it("loads the DHT from its own file when asked for one", async () => {
    const boot = runEntangle(["agent", "bootstrap", "--p2p-listen", "127.0.0.1:0", "--bootstrap", "none"], {}, entry);
    expect((await boot.waitMsg("agent started", 20_000)).dht).toBe("server");
  }, 30_000);
});
