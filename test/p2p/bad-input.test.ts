// Bad input to the CLI that the fuzzing found or that the README's bad-input catalogue lists
// without a test elsewhere (the rest: cli.test.ts). Each: exit 2 and one line naming the input.
import { describe, expect, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { runCli } from "../helpers/agents.ts";

const ok = { ENTANGLE_NETWORK_TOKEN: newToken() };
const connect = ["agent", "connect", "--service", "s", "--listen", "127.0.0.1:0"];

/** The issue's alias bomb in an edgevpn token: 10^8 strings once expanded. */
function bombToken(): string {
  const lines = ["otp: {dht: {key: a}, crypto: {key: b}}", `l0: &l0 [${Array.from({ length: 10 }, (_, i) => `"s${i}"`).join(", ")}]`];
  for (let i = 1; i <= 7; i++)
    lines.push(
      `l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(", ")}]`,
    );
  lines.push("room: *l7");
  return Buffer.from(lines.join("\n") + "\n").toString("base64");
}

describe("entangle CLI: bad input found by fuzzing", () => {
  it.each([
    // was: an UnknownProtocolError stack trace and exit 1 (the host was spliced into a multiaddr)
    ["--peer with a '/' in its host", [...connect, "--peer", "a/b:1"], ok, /^entangle: --peer: "a\/b" in "a\/b:1" is not a host name or an IP address$/],
    [
      "--peer splicing a peer id into its host",
      [...connect, "--peer", "evil/p2p/12D3KooWAbc:4001"],
      ok,
      /^entangle: --peer: "evil\/p2p\/12D3KooWAbc" in .* is not a host name or an IP address$/,
    ],
    [
      "--p2p-listen with a space in its host",
      [...connect, "--p2p-listen", "a b:1"],
      ok,
      /^entangle: --p2p-listen: "a b" in "a b:1" is not a host name or an IP address$/,
    ],
    [
      "an edgevpn token that is an alias bomb",
      ["token", "inspect", bombToken()],
      {},
      /^entangle: network token is malformed: edgevpn token \(base64 YAML\) refused: YAML uses too many aliases/,
    ],
    [
      "a token with a 40-bit key",
      ["token", "inspect", `entangle1.${Buffer.from(JSON.stringify({ k: "c2hvcnQ" })).toString("base64url")}`],
      {},
      /^entangle: network token key is too short \(40 bits, need >= 256\)$/,
    ],
  ])("%s -> exit 2 with one line", async (_name, args, env, line) => {
    const r = await runCli(args, env as Record<string, string>);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines.length, r.stderr).toBe(1);
    expect(lines[0]).toMatch(line);
  });
});
