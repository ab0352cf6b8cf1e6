// Every flag with bad input: one clear line on stderr, exit code 2, no stack trace.
import { describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { runCli } from "../helpers/agents.ts";

const token = newToken();
const ok = { ENTANGLE_NETWORK_TOKEN: token };
const expose = ["agent", "expose", "--service", "s", "--target", "127.0.0.1:80"];
const connect = ["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0"];

describe("entangle CLI", () => {
  it("token new prints only a token; inspect reads an argument or stdin", async () => {
    const made = await runCli(["token", "new", "--peer", "127.0.0.1:4001"]);
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/^entangle1\.[A-Za-z0-9_-]+\n$/);
    const a = await runCli(["token", "inspect", made.stdout.trim()]);
    const b = await runCli(["token", "inspect"], {}, made.stdout);
    expect(JSON.parse(a.stdout)).toEqual({ format: "entangle", fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/), peers: ["127.0.0.1:4001"] });
    expect(b.stdout).toBe(a.stdout);
  });

  it.each([
    ["token inspect garbage", ["token", "inspect", "garbage!"], {}],
    ["token inspect empty stdin", ["token", "inspect"], {}],
    ["token new --peer bad", ["token", "new", "--peer", "nope"], {}],
    ["malformed env token", expose, { ENTANGLE_NETWORK_TOKEN: "entangle1.???" }],
    ["malformed EDGEVPNTOKEN", expose, { EDGEVPNTOKEN: "bm90IHlhbWw6IFs=" }],
    ["no token at all", expose, {}],
    ["--token-file missing", [...expose, "--token-file", "/nonexistent/token"], {}],
    ["--service empty", ["agent", "expose", "--service", "", "--target", "127.0.0.1:80"], ok],
    ["--service missing", ["agent", "expose", "--target", "127.0.0.1:80"], ok],
    ["--target without port", ["agent", "expose", "--service", "s", "--target", "127.0.0.1"], ok],
    ["--target port 0", ["agent", "expose", "--service", "s", "--target", "127.0.0.1:0"], ok],
    ["--target port too big", ["agent", "expose", "--service", "s", "--target", "127.0.0.1:70000"], ok],
    ["--target missing", ["agent", "expose", "--service", "s"], ok],
    ["--listen not host:port", ["agent", "connect", "--service", "s", "--listen", "8080"], ok],
    ["--listen missing", ["agent", "connect", "--service", "s"], ok],
    ["--listen unbindable", ["agent", "connect", "--service", "s", "--listen", "203.0.113.9:8080", "--p2p-listen", "127.0.0.1:0"], ok],
    ["--p2p-listen bad", [...connect, "--p2p-listen", "x:y"], ok],
    ["--p2p-listen bad multiaddr", [...connect, "--p2p-listen", "/ip4/1.2.3/tcp/1"], ok],
    ["--peer bad", [...connect, "--peer", "127.0.0.1:99999"], ok],
    ["--peer bad multiaddr", [...connect, "--peer", "/nope/1"], ok],
    ["--health-listen bad", [...connect, "--health-listen", "localhost"], ok],
    ["unknown flag", [...connect, "--bogus"], ok],
    ["unknown mode", ["agent", "teleport"], ok],
  ])("%s -> exit 2 with one line", async (_name, args, env) => {
    const r = await runCli(args, env as Record<string, string>);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines.length, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe("");
  });
});
