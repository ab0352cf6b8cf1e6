// In-process tunnels for the Manifests controller: the module itself is a network member.
// One `connect` agent per (token, service), listening on an ephemeral 127.0.0.1 port that the
// Kubernetes client then uses as the remote API server. Idle tunnels are stopped, and what was
// built on them (the client) goes with them: nothing here grows with time.
import { createHash } from "node:crypto";
import { Agent } from "../p2p/agent.ts";
import { parseToken } from "../p2p/token.ts";
import { toMultiaddr } from "../p2p/addr.ts";
import { createLogger } from "../p2p/log.ts";

export const IDLE_MS = 10 * 60_000;

/** A running tunnel: the local port that reaches the service. */
export interface Tunnel {
  port: number;
  stop(): Promise<void>;
}

export type StartTunnel = (token: string, service: string) => Promise<Tunnel>;

interface Entry<T> {
  tunnel: Promise<Tunnel>;
  /** built once on the tunnel's port, dropped with the tunnel */
  user?: T;
  lastUsed: number;
}

/** A `connect` agent of the token's network on 127.0.0.1, dialing `peers` (plus the token's own). */
export function agentTunnels(peers: string[], listen: string[] = ["0.0.0.0:0"]): StartTunnel {
  return async (token, service) => {
    const parsed = parseToken(token);
    const agent = new Agent({
      role: { mode: "connect", service, listen: { host: "127.0.0.1", port: 0 } },
      token: parsed,
      p2pListen: listen.map((a) => toMultiaddr(a, "ENTANGLE_P2P_LISTEN")),
      peers: [...peers, ...parsed.peers].map((p) => toMultiaddr(p, "ENTANGLE_PEERS")),
      mdns: false,
      log: createLogger("entangle-module-tunnel"),
    });
    await agent.start();
    return { port: agent.listenAddress!.port, stop: () => agent.stop() };
  };
}

/** Tunnels by (token, service), each with what `build` made on its port (a Kubernetes client). */
export class TunnelPool<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly start: StartTunnel;
  private readonly build: (port: number, service: string) => T;
  private readonly idleMs: number;

  constructor(start: StartTunnel, build: (port: number, service: string) => T, idleMs = IDLE_MS) {
    this.start = start;
    this.build = build;
    this.idleMs = idleMs;
    setInterval(() => void this.sweep(), Math.min(60_000, idleMs)).unref();
  }

  /** What `build` made on the tunnel that reaches `service` through the network of `token`. */
  async get(token: string, service: string): Promise<T> {
    const key = createHash("sha256").update(token).update("\0").update(service).digest("hex");
    let entry = this.entries.get(key);
    if (!entry) {
      const fresh: Entry<T> = { tunnel: this.start(token, service), lastUsed: Date.now() };
      this.entries.set(key, fresh);
      // a failed start is forgotten, so the next call tries again
      fresh.tunnel.catch(() => this.entries.get(key) === fresh && this.entries.delete(key));
      entry = fresh;
    }
    entry.lastUsed = Date.now();
    const { port } = await entry.tunnel;
    entry.user ??= this.build(port, service);
    return entry.user;
  }

  /** Tunnels held (running or starting). */
  get size(): number {
    return this.entries.size;
  }

  /** Stops the tunnels unused for idleMs; their clients go with them. */
  async sweep(now = Date.now()): Promise<void> {
    for (const [key, entry] of this.entries) {
      if (now - entry.lastUsed < this.idleMs) continue;
      this.entries.delete(key);
      await entry.tunnel.then((t) => t.stop()).catch(() => undefined);
    }
  }
}
