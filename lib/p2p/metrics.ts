// Prometheus metrics of one agent, in their own registry (no global state between agents in tests).
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "entangle_process_" });
  const m = {
    registry,
    bytes: new Counter({
      name: "entangle_tunnel_bytes_total",
      help: "Bytes carried through tunnels, by direction and by path (direct, or relayed through a circuit relay)",
      labelNames: ["direction", "path"],
      registers: [registry],
      // the pipe counts in plain numbers (below), added here when the metrics are read
      collect: () => flush(),
    }),
    discoverySeconds: new Gauge({
      name: "entangle_provider_discovery_seconds",
      help: "Seconds from the agent's start until the DHT gave it a provider of its service (connect side)",
      registers: [registry],
    }),
    connections: new Counter({ name: "entangle_connections_total", help: "libp2p connections opened, by path", labelNames: ["path"], registers: [registry] }),
    holePunch: new Counter({
      name: "entangle_hole_punch_total",
      help: "Hole punching (DCUtR exchanges, either side): attempt = an exchange started, success = it left a direct connection to the peer",
      labelNames: ["result"],
      registers: [registry],
    }),
    streams: new Gauge({ name: "entangle_tunnel_active_streams", help: "Tunnel streams currently open", registers: [registry] }),
    tunnels: new Counter({ name: "entangle_tunnel_streams_total", help: "Tunnel streams by outcome", labelNames: ["result"], registers: [registry] }),
    dials: new Counter({ name: "entangle_dials_total", help: "Peer dials by result", labelNames: ["result"], registers: [registry] }),
    authFailures: new Counter({ name: "entangle_auth_failures_total", help: "Membership proofs that failed", registers: [registry] }),
    members: new Gauge({ name: "entangle_authenticated_peers", help: "Peers that proved the network token", registers: [registry] }),
  };
  // Counted per message (two per request per agent): a labelled prom-client inc() builds its label
  // string and a result object every time, so the pipe adds to plain numbers, and they go to the
  // counter when the metrics are read (its collect hook).
  const flushes: Array<() => void> = [];
  const flush = () => {
    for (const f of flushes) f();
  };
  const countersOf = (path: Path) => {
    const sent = m.bytes.labels("sent", path);
    const received = m.bytes.labels("received", path);
    // shown from the start (0), so a dashboard can tell "no relayed bytes" from "no data"
    sent.inc(0);
    received.inc(0);
    let [s, r] = [0, 0];
    flushes.push(() => {
      if (s > 0) sent.inc(s);
      if (r > 0) received.inc(r);
      s = r = 0;
    });
    return { sent: (n: number) => void (s += n), received: (n: number) => void (r += n) };
  };
  return { ...m, counters: { direct: countersOf("direct"), relayed: countersOf("relayed") } };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** How a connection reaches its peer: straight, or through a circuit relay. */
export type Path = "direct" | "relayed";

export function pathOf(conn: { remoteAddr: { toString(): string } }): Path {
  return conn.remoteAddr.toString().includes("/p2p-circuit") ? "relayed" : "direct";
}
