// In-process tunnels for the Manifests controller: the module itself is a network member.
// One `connect` agent per (token, service), listening on an ephemeral 127.0.0.1 port that the
// Kubernetes client then uses as the remote API server. Idle agents are stopped.
import { createHash } from "node:crypto";
import { Agent } from "../p2p/agent.ts";
import { parseToken } from "../p2p/token.ts";
import { toMultiaddr } from "../p2p/addr.ts";
import { createLogger } from "../p2p/log.ts";

const IDLE_MS = 10 * 60_000;

interface Entry {
  agent: Promise<Agent>;
  lastUsed: number;
}

export class TunnelPool {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly peers: string[];
  private readonly listen: string[];

  constructor(peers: string[], listen: string[] = ["0.0.0.0:0"]) {
    this.peers = peers;
    this.listen = listen;
    this.sweeper = setInterval(() => void this.sweep(), 60_000);
    this.sweeper.unref();
  }

  /** Local port that reaches `service` through the network of `token`. */
  async port(token: string, service: string): Promise<number> {
    const key = createHash("sha256").update(token).update("\0").update(service).digest("hex");
    let entry = this.entries.get(key);
    if (!entry) {
      const parsed = parseToken(token);
      const peers = [...this.peers, ...parsed.peers].map((p) => toMultiaddr(p, "ENTANGLE_PEERS"));
      const agent = new Agent({
        role: { mode: "connect", service, listen: { host: "127.0.0.1", port: 0 } },
        token: parsed,
        p2pListen: this.listen.map((a) => toMultiaddr(a, "ENTANGLE_P2P_LISTEN")),
        peers,
        mdns: false,
        log: createLogger("entangle-module-tunnel"),
      });
      entry = { agent: agent.start().then(() => agent), lastUsed: Date.now() };
      this.entries.set(key, entry);
      entry.agent.catch(() => this.entries.delete(key));
    }
    entry.lastUsed = Date.now();
    return (await entry.agent).listenAddress!.port;
  }

  private async sweep(): Promise<void> {
    for (const [key, entry] of this.entries) {
      if (Date.now() - entry.lastUsed < IDLE_MS) continue;
      this.entries.delete(key);
      await (await entry.agent).stop().catch(() => undefined);
    }
  }
}
