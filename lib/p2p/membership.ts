// Membership proof: before a peer may open a tunnel stream it proves it holds the network token.
// Both sides contribute a fresh nonce (replay-proof) and MAC a transcript that names both peer
// ids (bound to the Noise-authenticated identities, so a proof can't be relayed to a third peer).
// Roles are in the MAC input, so the responder's proof can't be reflected back as the initiator's.
// Only after both proofs verify does each side reveal which services it provides.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Connection, Stream } from "@libp2p/interface";
import { jsonChannel, WireError, type JsonChannel } from "./wire.ts";

export const AUTH_PROTOCOL = "/entangle/auth/1.0.0";
const TIMEOUT_MS = 10_000;

export interface Hello {
  /** Service tags (HMACs of service names) this peer provides. */
  services: string[];
}

export class MembershipError extends Error {}

function transcript(initiator: string, responder: string, nInit: Buffer, nResp: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`entangle-auth-v1\0${initiator}\0${responder}\0`), nInit, nResp]);
}

function mac(key: Buffer, role: "initiator" | "responder", t: Buffer): Buffer {
  return createHmac("sha256", key).update(role).update(t).digest();
}

function verify(key: Buffer, role: "initiator" | "responder", t: Buffer, got: unknown): void {
  const want = mac(key, role, t);
  const buf = typeof got === "string" ? Buffer.from(got, "base64") : Buffer.alloc(0);
  if (buf.length !== want.length || !timingSafeEqual(buf, want)) throw new MembershipError("membership proof failed (peer holds a different network token)");
}

/** A malformed frame is a refusal like a wrong proof (logged, the connection closed), not a stream error. */
async function recvMsg(ch: JsonChannel): Promise<Msg> {
  try {
    return await ch.recv<Msg>();
  } catch (err) {
    if (err instanceof WireError) throw new MembershipError(`malformed membership message: ${err.message}`);
    throw err;
  }
}

/** The other side's refusal, as it said it: bounded, since it lands in our log. */
const said = (error: unknown) => String(error).slice(0, 200);

interface Msg {
  nonce?: string;
  mac?: string;
  hello?: Hello;
  error?: string;
}

/** Run as the dialer of `conn`; resolves with the remote's Hello or throws MembershipError. */
export async function proveAsInitiator(conn: Connection, localId: string, key: Buffer, hello: Hello): Promise<Hello> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const stream = await conn.newStream(AUTH_PROTOCOL, { signal, runOnLimitedConnection: true });
  try {
    const ch = jsonChannel(stream, signal);
    const nInit = randomBytes(32);
    await ch.send({ nonce: nInit.toString("base64") });
    const r = await recvMsg(ch);
    if (r.error !== undefined) throw new MembershipError(`remote refused: ${said(r.error)}`);
    const nResp = Buffer.from(String(r.nonce ?? ""), "base64");
    if (nResp.length !== 32) throw new MembershipError("malformed membership reply");
    const t = transcript(localId, conn.remotePeer.toString(), nInit, nResp);
    try {
      verify(key, "responder", t, r.mac);
    } catch (err) {
      // tell the responder, so both ends log the refusal
      await ch.send({ error: "membership proof failed" }).catch(() => {});
      throw err;
    }
    await ch.send({ mac: mac(key, "initiator", t).toString("base64"), hello });
    const done = await recvMsg(ch);
    if (done.error !== undefined) throw new MembershipError(`remote refused: ${said(done.error)}`);
    return sanitizeHello(done.hello);
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  } finally {
    if (stream.status === "open") await stream.close().catch(() => {});
  }
}

/** Handler side. Resolves with the remote's Hello or throws MembershipError. */
export async function proveAsResponder(stream: Stream, conn: Connection, localId: string, key: Buffer, hello: Hello): Promise<Hello> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const ch = jsonChannel(stream, signal);
  try {
    const first = await recvMsg(ch);
    const nInit = Buffer.from(String(first.nonce ?? ""), "base64");
    if (nInit.length !== 32) throw new MembershipError("malformed membership request");
    const nResp = randomBytes(32);
    const t = transcript(conn.remotePeer.toString(), localId, nInit, nResp);
    await ch.send({ nonce: nResp.toString("base64"), mac: mac(key, "responder", t).toString("base64") });
    const second = await recvMsg(ch);
    if (second.error !== undefined) throw new MembershipError(`remote refused: ${said(second.error)} (peer holds a different network token)`);
    try {
      verify(key, "initiator", t, second.mac);
    } catch (err) {
      await ch.send({ error: "membership proof failed" }).catch(() => {});
      throw err;
    }
    await ch.send({ hello });
    await stream.close().catch(() => {});
    return sanitizeHello(second.hello);
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}

function sanitizeHello(h: unknown): Hello {
  const services = (h as Hello | undefined)?.services;
  return { services: Array.isArray(services) ? services.filter((s): s is string => typeof s === "string").slice(0, 1024) : [] };
}
