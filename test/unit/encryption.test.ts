import { randomBytes } from "node:crypto";
import { pureJsCrypto } from "@chainsafe/libp2p-noise";
import { Uint8ArrayList } from "uint8arraylist";
import { describe, expect, it } from "vitest";
import { aesGcmCrypto as c } from "../../lib/p2p/encryption.ts";

describe("Noise AES-256-GCM crypto", () => {
  const k = randomBytes(32);
  const nonce = randomBytes(12);
  const ad = randomBytes(32);

  it("round-trips plain and chunked messages", () => {
    const msg = randomBytes(65519);
    const sealed = Buffer.from(c.chaCha20Poly1305Encrypt(msg, nonce, ad, k).subarray());
    expect(sealed.length).toBe(msg.length + 16);
    expect(Buffer.from(c.chaCha20Poly1305Decrypt(sealed, nonce, ad, k).subarray())).toEqual(msg);
    const list = new Uint8ArrayList(msg.subarray(0, 1000), msg.subarray(1000));
    expect(Buffer.from(c.chaCha20Poly1305Encrypt(list, nonce, ad, k).subarray())).toEqual(sealed);
    const sealedList = new Uint8ArrayList(sealed.subarray(0, 7), sealed.subarray(7));
    expect(Buffer.from(c.chaCha20Poly1305Decrypt(sealedList, nonce, ad, k).subarray())).toEqual(msg);
  });

  it("a small frame as a list of one chunk or several (yamux frames): the same as a buffer, and a tampered one is rejected", () => {
    const msg = randomBytes(76);
    const sealed = Buffer.from(c.chaCha20Poly1305Encrypt(msg, nonce, ad, k).subarray());
    for (const cut of [[], [12], [5, 40]]) {
      const bounds = [0, ...cut, msg.length];
      const list = new Uint8ArrayList(...bounds.slice(1).map((end, i) => msg.subarray(bounds[i], end)));
      expect(Buffer.from(c.chaCha20Poly1305Encrypt(list, nonce, ad, k).subarray())).toEqual(sealed);
    }
    expect(Buffer.from(c.chaCha20Poly1305Decrypt(new Uint8ArrayList(sealed), nonce, ad, k).subarray())).toEqual(msg);
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] ^= 1;
    expect(() => c.chaCha20Poly1305Decrypt(new Uint8ArrayList(flipped), nonce, ad, k)).toThrow();
    flipped[flipped.length - 1] ^= 1;
    flipped[3] ^= 1;
    expect(() => c.chaCha20Poly1305Decrypt(new Uint8ArrayList(flipped), nonce, ad, k)).toThrow();
  });

  it("rejects tampered ciphertext, wrong key, nonce or associated data", () => {
    const sealed = Buffer.from(c.chaCha20Poly1305Encrypt(Buffer.from("secret"), nonce, ad, k).subarray());
    const flipped = Buffer.from(sealed);
    flipped[0] ^= 1;
    expect(() => c.chaCha20Poly1305Decrypt(flipped, nonce, ad, k)).toThrow();
    expect(() => c.chaCha20Poly1305Decrypt(sealed, nonce, ad, randomBytes(32))).toThrow();
    expect(() => c.chaCha20Poly1305Decrypt(sealed, randomBytes(12), ad, k)).toThrow();
    expect(() => c.chaCha20Poly1305Decrypt(sealed, nonce, randomBytes(32), k)).toThrow();
    expect(() => c.chaCha20Poly1305Decrypt(sealed.subarray(0, 10), nonce, ad, k)).toThrow();
  });

  it("agrees with the reference Noise primitives (HKDF, SHA-256, X25519)", () => {
    const ck = randomBytes(32);
    const ikm = randomBytes(32);
    expect(c.getHKDF(ck, ikm).map((b) => Buffer.from(b))).toEqual(pureJsCrypto.getHKDF(ck, ikm).map((b) => Buffer.from(b)));
    expect(Buffer.from(c.hashSHA256(ikm))).toEqual(Buffer.from(pureJsCrypto.hashSHA256(ikm)));
    const a = c.generateX25519KeyPair();
    const b = pureJsCrypto.generateX25519KeyPair();
    expect(Buffer.from(c.generateX25519SharedKey(a.privateKey, b.publicKey))).toEqual(
      Buffer.from(pureJsCrypto.generateX25519SharedKey(b.privateKey, a.publicKey)),
    );
    const seed = randomBytes(32);
    expect(Buffer.from(c.generateX25519KeyPairFromSeed(seed).publicKey)).toEqual(Buffer.from(pureJsCrypto.generateX25519KeyPairFromSeed(seed).publicKey));
  });
});
