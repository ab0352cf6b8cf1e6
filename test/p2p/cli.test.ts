// Every flag with bad input: one clear line on stderr naming the flag (or the token's source) and
// the value, exit code 2, no stack trace.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
    ["token inspect garbage", ["token", "inspect", "garbage!"], {}, /^entangle: network token is malformed: not an entangle or edgevpn token$/],
    ["token inspect empty stdin", ["token", "inspect"], {}, /^entangle: network token is empty$/],
    ["token new --peer bad", ["token", "new", "--peer", "nope"], {}, /^entangle: --peer: expected HOST:PORT, got "nope"$/],
    [
      "malformed env token",
      expose,
      { ENTANGLE_NETWORK_TOKEN: "entangle1.???" },
      /^entangle: network token is malformed: .* \(from \$ENTANGLE_NETWORK_TOKEN\)$/,
    ],
    [
      "malformed EDGEVPNTOKEN",
      expose,
      { EDGEVPNTOKEN: "bm90IHlhbWw6IFs=" },
      /^entangle: network token is malformed: edgevpn token \(base64 YAML\) refused: .* \(from \$EDGEVPNTOKEN\)$/,
    ],
    ["no token at all", expose, {}, /^entangle: no network token: set ENTANGLE_NETWORK_TOKEN \(or EDGEVPNTOKEN\) or pass --token-file$/],
    ["--token-file missing", [...expose, "--token-file", "/nonexistent/token"], {}, /^entangle: --token-file: cannot read \/nonexistent\/token: ENOENT$/],
    ["--service empty", ["agent", "expose", "--service", "", "--target", "127.0.0.1:80"], ok, /^entangle: --service "": must be 1-253 characters, got 0$/],
    ["--service missing", ["agent", "expose", "--target", "127.0.0.1:80"], ok, /^error: required option '--service <id>' not specified$/],
    [
      "--target without port",
      ["agent", "expose", "--service", "s", "--target", "127.0.0.1"],
      ok,
      /^entangle: --target: expected HOST:PORT, got "127\.0\.0\.1"$/,
    ],
    ["--target port 0", ["agent", "expose", "--service", "s", "--target", "127.0.0.1:0"], ok, /^entangle: --target: must be 1-65535, got 0$/],
    ["--target port too big", ["agent", "expose", "--service", "s", "--target", "127.0.0.1:70000"], ok, /^entangle: --target: must be 1-65535, got 70000$/],
    ["--target missing", ["agent", "expose", "--service", "s"], ok, /^error: required option '--target <host:port>' not specified$/],
    ["--listen not host:port", ["agent", "connect", "--service", "s", "--listen", "8080"], ok, /^entangle: --listen: expected HOST:PORT, got "8080"$/],
    ["--listen missing", ["agent", "connect", "--service", "s"], ok, /^error: required option '--listen <host:port>' not specified$/],
    [
      "--listen unbindable",
      ["agent", "connect", "--service", "s", "--listen", "203.0.113.9:8080", "--p2p-listen", "127.0.0.1:0"],
      ok,
      /^entangle: cannot listen: .*EADDRNOTAVAIL.* 203\.0\.113\.9:8080$/,
    ],
    ["--p2p-listen bad", [...connect, "--p2p-listen", "x:y"], ok, /^entangle: --p2p-listen: expected HOST:PORT, got "x:y"$/],
    [
      "--p2p-listen bad multiaddr",
      [...connect, "--p2p-listen", "/ip4/1.2.3/tcp/1"],
      ok,
      /^entangle: --p2p-listen: invalid multiaddr "\/ip4\/1\.2\.3\/tcp\/1": /,
    ],
    ["--peer bad", [...connect, "--peer", "127.0.0.1:99999"], ok, /^entangle: --peer: must be 1-65535, got 99999$/],
    ["--peer bad multiaddr", [...connect, "--peer", "/nope/1"], ok, /^entangle: --peer: invalid multiaddr "\/nope\/1": /],
    ["--peer port 0", [...connect, "--peer", "127.0.0.1:0"], ok, /^entangle: --peer: "127\.0\.0\.1:0" has port 0, which cannot be dialed$/],
    [
      "--peer multiaddr port 0",
      [...connect, "--peer", "/ip4/127.0.0.1/tcp/0"],
      ok,
      /^entangle: --peer: "\/ip4\/127\.0\.0\.1\/tcp\/0" has port 0, which cannot be dialed$/,
    ],
    [
      "--peer bad peer id",
      [...connect, "--peer", "/ip4/127.0.0.1/tcp/4001/p2p/notapeerid"],
      ok,
      /^entangle: --peer: "\/ip4\/127\.0\.0\.1\/tcp\/4001\/p2p\/notapeerid" has an invalid peer id "notapeerid"$/,
    ],
    ["--peer no transport", [...connect, "--peer", "/ip4/127.0.0.1"], ok, /^entangle: --peer: "\/ip4\/127\.0\.0\.1" names no TCP port$/],
    ["token new --peer port 0", ["token", "new", "--peer", "127.0.0.1:0"], {}, /^entangle: --peer: "127\.0\.0\.1:0" has port 0, which cannot be dialed$/],
    ["--health-listen bad", [...connect, "--health-listen", "localhost"], ok, /^entangle: --health-listen: expected HOST:PORT, got "localhost"$/],
    ["unknown flag", [...connect, "--bogus"], ok, /^error: unknown option '--bogus'$/],
    ["unknown mode", ["agent", "teleport"], ok, /^error: unknown command 'teleport'$/],
  ])("%s -> exit 2 with one line naming the flag and the value", async (_name, args, env, line) => {
    const r = await runCli(args, env as Record<string, string>);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines.length, r.stderr).toBe(1);
    expect(lines[0]).toMatch(line as RegExp);
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
    ["254 characters", "a".repeat(254), /^entangle: --service "a{80}\.\.\.": must be 1-253 characters, got 254$/],
    ["a newline", "a\nb", /^entangle: --service "a\\nb": must contain a visible character and no control characters$/],
  ])("%s -> refused naming --service and the value", async (_name, service, line) => {
    const r = await runCli(["agent", "expose", "--service", service, "--target", "127.0.0.1:80"], ok);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(line);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("entangle CLI: the reason it exits is left for Kubernetes", () => {
  it("writes the one-line reason to the termination log (Kubernetes shows it in the pod's status)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "entangle-term-"));
    try {
      const file = join(dir, "termination-log");
      writeFileSync(file, "");
      const r = await runCli(["agent", "expose", "--service", "a".repeat(254), "--target", "127.0.0.1:80"], { ...ok, ENTANGLE_TERMINATION_LOG: file });
      expect(r.code).toBe(2);
      expect(readFileSync(file, "utf8")).toBe(r.stderr.trim());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
