// The DHT's bootstrap list. By default, like the original (go-libp2p-kad-dht's
// DefaultBootstrapPeers), the public libp2p bootstrap peers; `--bootstrap ADDR` (repeatable) or
// ENTANGLE_BOOTSTRAP (comma-separated) replace it; `none` turns the DHT off.
//
// Safety: tests, benchmarks and demos must never reach the public peers. Where
// ENTANGLE_FORBID_PUBLIC_BOOTSTRAP is set (to anything but "" or "0"), asking for the built-in
// list throws: the test setup and every hack/ script set it, so a forgotten --bootstrap fails
// loudly instead of touching the internet.
import type { Multiaddr } from "@multiformats/multiaddr";
import { AddrError, toPeerMultiaddr } from "./addr.ts";

/** go-libp2p-kad-dht's DefaultBootstrapPeers, as the original uses them. */
export const PUBLIC_BOOTSTRAP_PEERS: readonly string[] = Object.freeze([
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
  "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
  "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
]);

export const FORBID_ENV = "ENTANGLE_FORBID_PUBLIC_BOOTSTRAP";

export class PublicBootstrapForbidden extends Error {
  constructor() {
    super(
      `the built-in public libp2p bootstrap list was asked for while ${FORBID_ENV} is set: ` +
        "pass --bootstrap ADDR (the NAT lab's: hack/natlab.sh up prints them), ENTANGLE_BOOTSTRAP, or --bootstrap none",
    );
    this.name = "PublicBootstrapForbidden";
  }
}

function forbidden(env: NodeJS.ProcessEnv): boolean {
  const v = env[FORBID_ENV]?.trim();
  return v !== undefined && v !== "" && v !== "0";
}

/** The built-in public list; throws PublicBootstrapForbidden where the environment forbids it. */
export function publicBootstrapPeers(env: NodeJS.ProcessEnv = process.env): Multiaddr[] {
  if (forbidden(env)) throw new PublicBootstrapForbidden();
  return PUBLIC_BOOTSTRAP_PEERS.map((a) => toPeerMultiaddr(a, "built-in bootstrap peer"));
}

export interface BootstrapChoice {
  /** empty: no DHT */
  peers: Multiaddr[];
  source: "--bootstrap" | "ENTANGLE_BOOTSTRAP" | "built-in public list" | "none";
}

/**
 * --bootstrap values win over ENTANGLE_BOOTSTRAP, which wins over the built-in list. "none"
 * (alone, or as the only entry) turns the DHT off. Each address must name its peer id: a DHT
 * bootstrap peer is trusted to be who it says.
 */
export function chooseBootstrap(flags: string[], env: NodeJS.ProcessEnv = process.env): BootstrapChoice {
  const fromFlags = flags.flatMap(split);
  const fromEnv = split(env.ENTANGLE_BOOTSTRAP ?? "");
  const [values, source] = fromFlags.length > 0 ? ([fromFlags, "--bootstrap"] as const) : ([fromEnv, "ENTANGLE_BOOTSTRAP"] as const);
  if (values.length === 0) return { peers: publicBootstrapPeers(env), source: "built-in public list" };
  if (values.some((v) => v.toLowerCase() === "none")) {
    if (values.length > 1) throw new AddrError(`${source}: "none" turns the DHT off and cannot be combined with addresses`);
    return { peers: [], source: "none" };
  }
  return {
    peers: values.map((v) => {
      const a = toPeerMultiaddr(v, source);
      if (!a.getComponents().some((c) => c.name === "p2p")) throw new AddrError(`${source}: ${JSON.stringify(v)} names no peer id (/p2p/...)`);
      return a;
    }),
    source,
  };
}

function split(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "");
}
