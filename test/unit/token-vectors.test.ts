// Known-answer vectors for the keys every member derives from the token. Peers of different
// versions must derive the same keys, so a changed HKDF salt or label (or a changed reading of
// an edgevpn token's fields) must fail here, not only between two releases in the field.
import { describe, expect, it } from "vitest";
import { deriveKeys, parseToken, providerKey, serviceTag } from "../../lib/p2p/token.ts";
import { providerCid } from "../../lib/p2p/dht.ts";

const entangleToken = "entangle1." + Buffer.from(JSON.stringify({ v: 1, k: Buffer.alloc(32, 7).toString("base64url") })).toString("base64url");
const edgevpnToken = Buffer.from("otp:\n  dht:\n    key: dhtkey\n  crypto:\n    key: cryptokey\nroom: r\nrendezvous: z\nmdns: m\n").toString("base64");

describe("token key derivation: fixed vectors", () => {
  it("an entangle token: fingerprint, membership, rendezvous and service keys, a service tag", () => {
    const keys = deriveKeys(parseToken(entangleToken));
    expect(keys.fingerprint).toBe("6fa0fd9c52171a73");
    expect(keys.auth.toString("hex")).toBe("79181b0cba3bd8828b4fa73f0895b81a4ff3ac34f737b0cf10c756b136d488cb");
    expect(keys.rendezvous.toString("hex")).toBe("5c0cd2627fec5a05be3bae81eecaff1e0a8fc4d9256503e267d5cd19060e0111");
    expect(keys.service.toString("hex")).toBe("2e36f11bc7e5e9f17a9eafa5a60df63e1221eb73118f4d8ca064185d20ab3d74");
    expect(serviceTag(keys, "foo")).toBe("fb21226c59394e33cffa724333484bd67f13d2c2fb05f86c6d253ac07ac2dbfd");
  });

  it("the DHT provider key of a service and the CID it is announced under", () => {
    const keys = deriveKeys(parseToken(entangleToken));
    // computed independently (Python hmac/hashlib: HKDF-SHA256, salt "entangle/v1", info "dht-provider";
    // HMAC-SHA256(key, "provider\0" + name); CIDv1 raw + sha2-256 multihash, base32)
    expect(keys.discovery.toString("hex")).toBe("c7cf5600043700798dc208a595f44dec0b56e763cf5f63a3d7a64ec86364b195");
    expect(providerKey(keys, "foo").toString("hex")).toBe("1a7cf4ce0ef6495aae475afcff298d14b7802797a04878e251fa3d4d9b7021dd");
    expect(providerCid(keys, "foo").toString()).toBe("bafkreia2pt2m4dxwjfnk4r227t7stdiuw6acpf5ajb4oeup2hvgzw4bb3u");
    // public on the DHT: unlike the service tag (members only), and different per service and per network
    expect(providerKey(keys, "foo").toString("hex")).not.toBe(serviceTag(keys, "foo"));
    expect(providerKey(keys, "bar").equals(providerKey(keys, "foo"))).toBe(false);
    expect(providerKey(deriveKeys(parseToken(edgevpnToken)), "foo").equals(providerKey(keys, "foo"))).toBe(false);
  });

  it("an edgevpn token: every field that makes its secret counts (room, rendezvous, mdns)", () => {
    const t = parseToken(edgevpnToken);
    expect(t.format).toBe("edgevpn");
    expect(t.peers).toEqual([]);
    expect(deriveKeys(t).fingerprint).toBe("0bf8c3177139f926");
  });
});
