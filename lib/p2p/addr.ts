// Address parsing shared by the CLI and the node: users write HOST:PORT, libp2p wants multiaddrs.
import { isIP } from "node:net";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { peerIdFromString } from "@libp2p/peer-id";
import { formatHostPort, portNumber, type HostPort } from "../hostport.ts";

export class AddrError extends Error {}

export { formatHostPort, type HostPort };

/** lib/hostport.ts portNumber, or an AddrError naming `what` and the value. */
export function parsePort(value: string | number, what = "port"): number {
  const n = portNumber(value);
  if (n !== undefined) return n;
  const s = String(value).trim();
  if (/^\d{1,5}$/.test(s)) throw new AddrError(`${what}: must be 1-65535, got ${Number(s)}`);
  throw new AddrError(`${what}: must be a number 1-65535, got ${JSON.stringify(String(value))}`);
}

/** "HOST:PORT" or "[v6]:PORT"; allowZeroPort for listeners that take an ephemeral port. */
export function parseHostPort(value: string, what = "address", allowZeroPort = false): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]]+):(\d+)$/.exec(value);
  if (m === null) throw new AddrError(`${what}: expected HOST:PORT, got ${JSON.stringify(value)}`);
  const host = m[1];
  if (allowZeroPort && m[2] === "0") return { host, port: 0 };
  return { host, port: parsePort(m[2], what) };
}

/** HOST:PORT or a multiaddr string -> Multiaddr. DNS names become /dns/. */
export function toMultiaddr(value: string, what = "address"): Multiaddr {
  if (value.startsWith("/")) {
    try {
      return multiaddr(value);
    } catch (err) {
      throw new AddrError(`${what}: invalid multiaddr ${JSON.stringify(value)}: ${(err as Error).message}`);
    }
  }
  const { host, port } = parseHostPort(value, what, true);
  const proto = isIP(host) === 6 ? "ip6" : isIP(host) === 4 ? "ip4" : "dns";
  // a "/" would splice components of its own into the multiaddr ("a/p2p/X:1")
  if (proto === "dns" && /[/\s\p{Cc}]/u.test(host))
    throw new AddrError(`${what}: ${JSON.stringify(host)} in ${JSON.stringify(value)} is not a host name or an IP address`);
  try {
    return multiaddr(`/${proto}/${host}/tcp/${port}`);
  } catch (err) {
    throw new AddrError(`${what}: invalid address ${JSON.stringify(value)}: ${(err as Error).message}`);
  }
}

/**
 * A peer to dial (--peer, a token's peers, ENTANGLE_PEERS): HOST:PORT or a multiaddr with a TCP
 * port other than 0 and, if it names one, a valid peer id. Such mistakes otherwise only show
 * as dials failing forever at debug level.
 */
export function toPeerMultiaddr(value: string, what = "peer"): Multiaddr {
  const addr = toMultiaddr(value, what);
  const parts = addr.getComponents();
  const tcp = parts.find((c) => c.name === "tcp");
  if (tcp === undefined && !parts.some((c) => c.name === "dnsaddr")) throw new AddrError(`${what}: ${JSON.stringify(value)} names no TCP port`);
  if (tcp?.value === "0") throw new AddrError(`${what}: ${JSON.stringify(value)} has port 0, which cannot be dialed`);
  for (const c of parts.filter((c) => c.name === "p2p")) {
    try {
      peerIdFromString(c.value ?? "");
    } catch {
      throw new AddrError(`${what}: ${JSON.stringify(value)} has an invalid peer id ${JSON.stringify(c.value)}`);
    }
  }
  return addr;
}

/**
 * An address to announce (--p2p-announce): where others can dial us, so a TCP port other than 0,
 * a specific host (not 0.0.0.0 or ::) and no peer id (libp2p appends ours).
 */
export function toAnnounceMultiaddr(value: string, what = "--p2p-announce"): Multiaddr {
  const addr = toMultiaddr(value, what);
  const parts = addr.getComponents();
  const tcp = parts.find((c) => c.name === "tcp");
  if (tcp === undefined) throw new AddrError(`${what}: ${JSON.stringify(value)} names no TCP port`);
  if (tcp.value === "0") throw new AddrError(`${what}: ${JSON.stringify(value)} has port 0, which cannot be dialed`);
  if (parts.some((c) => (c.name === "ip4" && c.value === "0.0.0.0") || (c.name === "ip6" && c.value === "::")))
    throw new AddrError(`${what}: ${JSON.stringify(value)} is not a specific address others can dial`);
  if (parts.some((c) => c.name === "p2p" || c.name === "p2p-circuit"))
    throw new AddrError(`${what}: ${JSON.stringify(value)} must not name a peer (ours is added)`);
  return addr;
}
