// Network tokens: the only shared secret. Two formats are accepted:
//  - entangle: "entangle1." + base64url(JSON {k: base64url(32 random bytes), p?: [peer addrs]})
//  - edgevpn / kairos-cli: base64(YAML) with otp.dht.key, otp.crypto.key, room, rendezvous, mdns
// Whatever the format, every key we use is derived from the token's secret material with HKDF,
// so no key is ever used for two purposes and edgevpn tokens carry no weaker guarantee.
import { createHmac, hkdfSync, randomBytes } from "node:crypto";
import { parseYaml, YamlError } from "../yaml.ts";

export type TokenFormat = "entangle" | "edgevpn";

export interface NetworkToken {
  format: TokenFormat;
  /** Secret input keying material; never logged. */
  secret: Buffer;
  /** Rendezvous / relay peers embedded in the token (HOST:PORT or multiaddrs). */
  peers: string[];
}

export interface DerivedKeys {
  /** HMAC key for the mutual membership proof. */
  auth: Buffer;
  /** Key naming the rendezvous namespace a relay sees (opaque to it). */
  rendezvous: Buffer;
  /** Key turning service names into opaque tags. */
  service: Buffer;
  /** Key turning service names into the DHT keys their providers announce under (opaque to the DHT). */
  discovery: Buffer;
  /** Short public identifier of the network, safe to print. */
  fingerprint: string;
}

export class TokenError extends Error {}

const PREFIX = "entangle1.";
const MIN_SECRET_BYTES = 32;
/** edgevpn tokens are a few hundred bytes of YAML; they carry no aliases. */
const MAX_EDGEVPN_YAML_BYTES = 64 * 1024;

export function newToken(peers: string[] = []): string {
  const body: { k: string; p?: string[] } = { k: randomBytes(32).toString("base64url") };
  if (peers.length > 0) body.p = peers;
  return PREFIX + Buffer.from(JSON.stringify(body)).toString("base64url");
}

export function parseToken(raw: string): NetworkToken {
  const text = raw.trim();
  if (text === "") throw new TokenError("network token is empty");
  if (text.startsWith(PREFIX)) return parseEntangle(text.slice(PREFIX.length));
  return parseEdgevpn(text);
}

function parseEntangle(b64: string): NetworkToken {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(b64, "base64url").toString("utf8"));
  } catch {
    throw new TokenError("network token is malformed: the part after 'entangle1.' is not base64url JSON");
  }
  const { k, p } = (body ?? {}) as { k?: unknown; p?: unknown };
  if (typeof k !== "string") throw new TokenError("network token is malformed: no key");
  const secret = Buffer.from(k, "base64url");
  if (secret.length < MIN_SECRET_BYTES) throw new TokenError(`network token key is too short (${secret.length * 8} bits, need >= 256)`);
  if (p !== undefined && !(Array.isArray(p) && p.every((x) => typeof x === "string")))
    throw new TokenError("network token is malformed: peers must be a list of strings");
  return { format: "entangle", secret, peers: (p as string[] | undefined) ?? [] };
}

function parseEdgevpn(b64: string): NetworkToken {
  if (!/^[A-Za-z0-9+/=_-]+$/.test(b64)) throw new TokenError("network token is malformed: not an entangle or edgevpn token");
  let doc: unknown;
  try {
    // untrusted: bounded size and aliasing (an alias bomb here cost seconds and a GiB per parse)
    doc = parseYaml(Buffer.from(b64, "base64").toString("utf8"), { maxBytes: MAX_EDGEVPN_YAML_BYTES, maxAliasCount: 0 });
  } catch (err) {
    const why = err instanceof YamlError ? err.message : String(err);
    throw new TokenError(`network token is malformed: edgevpn token (base64 YAML) refused: ${why}`);
  }
  const d = (doc ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- untrusted YAML, checked field by field below
  if (typeof d !== "object") throw new TokenError("network token is malformed: not an entangle or edgevpn token");
  const cryptoKey = d.otp?.crypto?.key;
  const dhtKey = d.otp?.dht?.key;
  if (typeof cryptoKey !== "string" || typeof dhtKey !== "string" || cryptoKey === "" || dhtKey === "")
    throw new TokenError("network token is malformed: edgevpn token lacks otp.crypto.key / otp.dht.key");
  // The edgevpn secret is spread over several fields; bind them all, in a fixed order.
  const parts = [cryptoKey, dhtKey, String(d.room ?? ""), String(d.rendezvous ?? ""), String(d.mdns ?? "")];
  const secret = Buffer.from(JSON.stringify(parts));
  return { format: "edgevpn", secret, peers: [] };
}

function derive(secret: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, "entangle/v1", info, 32));
}

export function deriveKeys(token: NetworkToken): DerivedKeys {
  const fp = derive(token.secret, "fingerprint").subarray(0, 8).toString("hex");
  return {
    auth: derive(token.secret, "membership-auth"),
    rendezvous: derive(token.secret, "rendezvous"),
    service: derive(token.secret, "service-tag"),
    discovery: derive(token.secret, "dht-provider"),
    fingerprint: fp,
  };
}

/** Opaque tag for a service name: peers compare tags, never names, outside the authenticated channel. */
export function serviceTag(keys: DerivedKeys, service: string): string {
  return createHmac("sha256", keys.service).update(service).digest("hex");
}

/**
 * The 32 bytes a service's providers are announced under in the DHT. Unlike the service tag
 * (shown to members only), this value is public: everyone on the DHT sees it. Without the token
 * it cannot be linked to a service name or to a network, and two networks' keys never meet.
 */
export function providerKey(keys: DerivedKeys, service: string): Buffer {
  return createHmac("sha256", keys.discovery).update("provider\0").update(service).digest();
}

export function inspectToken(raw: string): { format: TokenFormat; fingerprint: string; peers: string[] } {
  const t = parseToken(raw);
  return { format: t.format, fingerprint: deriveKeys(t).fingerprint, peers: t.peers };
}
