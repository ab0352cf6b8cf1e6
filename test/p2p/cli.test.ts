// Every flag with bad input: one clear line on stderr, exit code 2, no stack trace.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
    ["--peer port 0", [...connect, "--peer", "127.0.0.1:0"], ok],
    ["--peer multiaddr port 0", [...connect, "--peer", "/ip4/127.0.0.1/tcp/0"], ok],
    ["--peer bad peer id", [...connect, "--peer", "/ip4/127.0.0.1/tcp/4001/p2p/notapeerid"], ok],
    ["--peer no transport", [...connect, "--peer", "/ip4/127.0.0.1"], ok],
    ["token new --peer port 0", ["token", "new", "--peer", "127.0.0.1:0"], {}],
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

describe("entangle CLI: --service follows the CRD's rule", () => {
  // a bad --target after a good --service: the error names --target, so --service was accepted
  it("200 emoji (400 UTF-16 units) are accepted like the CRD accepts them", async () => {
    const r = await runCli(["agent", "expose", "--service", "\u{1F600}".repeat(200), "--target", "127.0.0.1:0"], ok);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--target");
  });

  it.each([
    ["254 characters", "a".repeat(254)],
    ["a newline", "a\nb"],
  ])("%s -> refused naming --service", async (_name, service) => {
    const r = await runCli(["agent", "expose", "--service", service, "--target", "127.0.0.1:80"], ok);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^entangle: --service: /);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("entangle CLI: the reason it exits is left for Kubernetes", () => {
  it("writes the one-line reason to the termination log (Kubernetes shows it in the pod's status)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "entangle-term-"));
    const file = join(dir, "termination-log");
    writeFileSync(file, "");
    const r = await runCli(["agent", "expose", "--service", "a".repeat(254), "--target", "127.0.0.1:80"], { ...ok, ENTANGLE_TERMINATION_LOG: file });
    expect(r.code).toBe(2);
    expect(readFileSync(file, "utf8")).toBe(r.stderr.trim());
  });

  it("without a termination log file, exits just the same", async () => {
    const r = await runCli(["agent", "expose", "--service", "", "--target", "127.0.0.1:80"], { ...ok, ENTANGLE_TERMINATION_LOG: "/nonexistent/dir/log" });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("entangle CLI: peers embedded in the token", () => {
  it.each([
    ["port 0", "127.0.0.1:0"],
    ["bad peer id", "/ip4/127.0.0.1/tcp/4001/p2p/notapeerid"],
  ])("%s: refused naming the token, not --peer", async (_name, peer) => {
    const bad = newToken([peer]);
    const r = await runCli(connect, { ENTANGLE_NETWORK_TOKEN: bad });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^entangle: peer embedded in the network token \(from \$ENTANGLE_NETWORK_TOKEN\): /);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
