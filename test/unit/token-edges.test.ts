// lib/p2p/token.ts edges the mutation run found untested: the exact refusals, the peers check,
// the key-length boundary, the edgevpn charset and missing fields, what a new token carries.
import { describe, expect, it } from "vitest";
import { TokenError, deriveKeys, inspectToken, newToken, parseToken } from "../../lib/p2p/token.ts";

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const entangle = (body: unknown) => `entangle1.${b64url(body)}`;
const key32 = Buffer.alloc(32, 7).toString("base64url");
const edgevpn = (yaml: string) => Buffer.from(yaml).toString("base64");
const EDGE = "otp:\n  dht:\n    key: dhtkey\n  crypto:\n    key: cryptokey\nroom: r\nrendezvous: v\nmdns: m\n";

function refusal(raw: string): string {
  try {
    parseToken(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(TokenError);
    return (e as Error).message;
  }
  throw new Error(`accepted ${raw}`);
}

describe("entangle tokens", () => {
  it("a new token carries a 32-byte key and a peers list only when given peers", () => {
    const body = (t: string) => JSON.parse(Buffer.from(t.slice("entangle1.".length), "base64url").toString());
    const plain = body(newToken());
    expect(Object.keys(plain)).toEqual(["k"]);
    expect(Buffer.from(plain.k, "base64url")).toHaveLength(32);
    expect(body(newToken(["h:1"]))).toEqual({ k: expect.any(String), p: ["h:1"] });
    expect(parseToken(newToken()).peers).toEqual([]);
  });

  it("the key: 256 bits accepted, 248 refused, none refused", () => {
    expect(parseToken(entangle({ k: key32 })).secret).toEqual(Buffer.alloc(32, 7));
    expect(refusal(entangle({ k: Buffer.alloc(31).toString("base64url") }))).toBe("network token key is too short (248 bits, need >= 256)");
    expect(refusal(entangle({}))).toBe("network token is malformed: no key");
    expect(refusal(entangle(null))).toBe("network token is malformed: no key");
    expect(refusal(entangle({ k: 5 }))).toBe("network token is malformed: no key");
    expect(refusal("entangle1.%%%")).toBe("network token is malformed: the part after 'entangle1.' is not base64url JSON");
    expect(refusal("   ")).toBe("network token is empty");
  });

  it("peers: a list of strings, every one", () => {
    expect(parseToken(entangle({ k: key32, p: [] })).peers).toEqual([]);
    expect(parseToken(entangle({ k: key32, p: ["a:1", "b:2"] })).peers).toEqual(["a:1", "b:2"]);
    for (const p of [["a:1", 2], [2, "a:1"], "a:1", null, { 0: "a:1" }])
      expect(refusal(entangle({ k: key32, p }))).toBe("network token is malformed: peers must be a list of strings");
  });
});

describe("edgevpn tokens", () => {
  it("only base64 characters, the whole token", () => {
    const good = edgevpn(EDGE);
    expect(parseToken(good).format).toBe("edgevpn");
    for (const bad of [`!${good}`, `${good}!`, `${good.slice(0, 8)} ${good.slice(8)}`, "é"])
      expect(refusal(bad)).toBe("network token is malformed: not an entangle or edgevpn token");
    // base64url characters are let through the charset check
    expect(refusal("_-_-")).toMatch(/^network token is malformed: /);
  });

  it("both otp keys, non-empty strings", () => {
    const lacks = "network token is malformed: edgevpn token lacks otp.crypto.key / otp.dht.key";
    expect(refusal(edgevpn("otp:\n  dht:\n    key: d\n"))).toBe(lacks);
    expect(refusal(edgevpn("otp:\n  crypto:\n    key: c\n"))).toBe(lacks);
    expect(refusal(edgevpn("otp:\n  dht:\n    key: ''\n  crypto:\n    key: c\n"))).toBe(lacks);
    expect(refusal(edgevpn("otp:\n  dht:\n    key: d\n  crypto:\n    key: ''\n"))).toBe(lacks);
    expect(refusal(edgevpn("otp:\n  dht:\n    key: 5\n  crypto:\n    key: c\n"))).toBe(lacks);
    expect(refusal(edgevpn("otp:\n  dht:\n    key: d\n  crypto:\n    key: 5\n"))).toBe(lacks);
    expect(refusal(edgevpn("~\n"))).toBe(lacks);
    expect(refusal(edgevpn("just a string\n"))).toBe("network token is malformed: not an entangle or edgevpn token");
  });

  it("absent room, rendezvous and mdns count as empty", () => {
    const fp = (yaml: string) => inspectToken(edgevpn(yaml)).fingerprint;
    const bare = "otp:\n  dht:\n    key: d\n  crypto:\n    key: c\n";
    expect(fp(bare)).toBe(fp(`${bare}room: ''\nrendezvous: ''\nmdns: ''\n`));
    expect(fp(bare)).not.toBe(fp(`${bare}room: x\n`));
    expect(parseToken(edgevpn(bare)).secret.toString()).toBe(JSON.stringify(["c", "d", "", "", ""]));
  });

  it("YAML it refuses names the reason", () => {
    const msg = refusal(edgevpn("a: &x [1]\nb: *x\n"));
    expect(msg).toMatch(/^network token is malformed: edgevpn token \(base64 YAML\) refused: \S/);
  });
});

describe("inspectToken", () => {
  it("format, fingerprint and peers", () => {
    const t = entangle({ k: key32, p: ["h:1"] });
    expect(inspectToken(t)).toEqual({ format: "entangle", fingerprint: deriveKeys(parseToken(t)).fingerprint, peers: ["h:1"] });
  });
});
