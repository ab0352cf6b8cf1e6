// A stranger at a member relay (run in a lab site by nat.test.ts):
//   node test/natlab/relay-probe.ts RELAY_MULTIADDR TARGET_PEER_ID
// Asks the relay, over the standard circuit-relay v2 hop protocol, for a reservation and for a
// relayed connection to TARGET (a member holding a reservation there), twice: once as a peer
// that never proves anything, once right after failing the membership proof with another token.
// Prints one JSON line: { silent: {reserve, connect}, otherToken: {reserve, connect} }, each the
// relay's status name ("OK", "PERMISSION_DENIED", ...) or "closed: <error>" when the relay ended
// the stream or the connection instead.
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { peerIdFromString } from "@libp2p/peer-id";
import { pbStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import type { Connection } from "@libp2p/interface";
import { HopMessage, Status } from "../../node_modules/@libp2p/circuit-relay-v2/dist/src/pb/index.js";
import { proveAsInitiator } from "../../lib/p2p/membership.ts";
import { deriveKeys, newToken, parseToken } from "../../lib/p2p/token.ts";

const HOP = "/libp2p/circuit/relay/0.2.0/hop";
const [relayAddr, target] = process.argv.slice(2);

async function ask(conn: Connection, msg: Partial<HopMessage>): Promise<string> {
  try {
    const stream = await conn.newStream(HOP, { signal: AbortSignal.timeout(15_000) });
    const pb = pbStream(stream).pb(HopMessage);
    await pb.write(msg as HopMessage);
    const reply = await pb.read({ signal: AbortSignal.timeout(15_000) });
    await stream.close().catch(() => {});
    return reply.status === undefined ? "no status" : Status[reply.status];
  } catch (err) {
    return `closed: ${(err as Error).message}`;
  }
}

async function both(node: Libp2p, before?: (conn: Connection) => Promise<unknown>): Promise<{ reserve: string; connect: string }> {
  const conn = await node.dial(multiaddr(relayAddr), { signal: AbortSignal.timeout(10_000) });
  await before?.(conn).catch(() => {});
  // both at once: the relay closes a connection that proves nothing within 10 s (member-gate.ts)
  const [reserve, connect] = await Promise.all([
    ask(conn, { type: HopMessage.Type.RESERVE }),
    ask(conn, { type: HopMessage.Type.CONNECT, peer: { id: peerIdFromString(target).toMultihash().bytes, addrs: [] } }),
  ]);
  await node.hangUp(multiaddr(relayAddr)).catch(() => {});
  return { reserve, connect };
}

const node = await createLibp2p({
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() },
});
const other = deriveKeys(parseToken(newToken()));
const silent = await both(node);
const otherToken = await both(node, (conn) => proveAsInitiator(conn, node.peerId.toString(), other.auth, { services: [] }));
process.stdout.write(JSON.stringify({ silent, otherToken }) + "\n");
await node.stop();
process.exit(0);
