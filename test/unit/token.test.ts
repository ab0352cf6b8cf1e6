import { describe, expect, it } from "vitest";
import { TokenError, deriveKeys, inspectToken, newToken, parseToken, serviceTag } from "../../lib/p2p/token.ts";

// Shape of a token made by kairos-cli / edgevpn: base64(YAML).
const edgevpnYaml = `otp:
  dht:
    interval: 9000
    key: 4OsVXyCN2r8ZLFEXNJJvXOCU3iPyaRn9AfJ2KMGRd8j
    length: 43
  crypto:
    interval: 9000
    key: ySxSe1BqXjpuBTbjPNQKDg0pCgZ8tbM6ZOhGs4zhvBf
    length: 43
room: bq9zRzqY1oDmMZmyvaSRhTTNtyntJmwlmqvpOUStEtJ
rendezvous: B6jq3qyBD8lPL6DCk6NMrAGwTmPXPQjZ3DxF4mAVv8v
mdns: AJ8jCz7qsTGRO9vzvrwwnK0vXkv6Oe2tE5Kb6OxZ1No
max_message_size: 20971520
`;
const edgevpnToken = Buffer.from(edgevpnYaml).toString("base64");

describe("network tokens", () => {
  it("round-trips a new token with >= 256 random bits and embedded peers", () => {
    const t = newToken(["127.0.0.1:4001", "/ip4/127.0.0.1/tcp/4002"]);
    const parsed = parseToken(t);
    expect(parsed.format).toBe("entangle");
    expect(parsed.secret.length).toBeGreaterThanOrEqual(32);
    expect(parsed.peers).toEqual(["127.0.0.1:4001", "/ip4/127.0.0.1/tcp/4002"]);
    expect(parseToken(`  ${t}\n`).secret).toEqual(parsed.secret);
    expect(newToken()).not.toBe(newToken());
  });

  it("accepts edgevpn / kairos-cli tokens", () => {
    const parsed = parseToken(edgevpnToken);
    expect(parsed.format).toBe("edgevpn");
    expect(inspectToken(edgevpnToken).fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it("derives distinct keys per purpose and per token", () => {
    const a = deriveKeys(parseToken(newToken()));
    const b = deriveKeys(parseToken(newToken()));
    expect(new Set([a.auth, a.rendezvous, a.service].map((k) => k.toString("hex"))).size).toBe(3);
    expect(a.auth.equals(b.auth)).toBe(false);
    expect(serviceTag(a, "foo")).not.toBe(serviceTag(b, "foo"));
    expect(serviceTag(a, "foo")).not.toBe(serviceTag(a, "foo2"));
    // edgevpn tokens that differ only in one field derive different keys
    const other = Buffer.from(edgevpnYaml.replace("room: bq9", "room: XX9")).toString("base64");
    expect(deriveKeys(parseToken(other)).auth.equals(deriveKeys(parseToken(edgevpnToken)).auth)).toBe(false);
  });

  it.each([
    ["", /empty/],
    ["entangle1.not-json", /malformed/],
    [`entangle1.${Buffer.from(JSON.stringify({ k: "c2hvcnQ" })).toString("base64url")}`, /too short/],
    [`entangle1.${Buffer.from(JSON.stringify({ k: Buffer.alloc(32).toString("base64url"), p: [1] })).toString("base64url")}`, /peers/],
    ["garbage!!", /malformed/],
    [Buffer.from("hello: world\n").toString("base64"), /otp/],
    [Buffer.from("just a string").toString("base64"), /malformed/],
  ])("rejects malformed token %j", (raw, message) => {
    expect(() => parseToken(raw)).toThrow(TokenError);
    expect(() => parseToken(raw)).toThrow(message);
  });
});
