// Address parsing shared by the CLI and the node: users write HOST:PORT, libp2p wants multiaddrs.
import { isIP } from "node:net";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";

export class AddrError extends Error {}

export interface HostPort {
  host: string;
  port: number;
}

export function parsePort(value: string | number, what = "port"): number {
  const s = String(value).trim();
  if (!/^\d{1,5}$/.test(s)) throw new AddrError(`${what}: must be a number 1-65535, got ${JSON.stringify(String(value))}`);
  const n = Number(s);
  if (n < 1 || n > 65535) throw new AddrError(`${what}: must be 1-65535, got ${n}`);
  return n;
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
  return multiaddr(`/${proto}/${host}/tcp/${port}`);
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
