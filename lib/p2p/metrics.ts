// Prometheus metrics of one agent, in their own registry (no global state between agents in tests).
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "entangle_process_" });
  const m = {
    registry,
    bytes: new Counter({ name: "entangle_tunnel_bytes_total", help: "Bytes carried through tunnels", labelNames: ["direction"], registers: [registry] }),
    streams: new Gauge({ name: "entangle_tunnel_active_streams", help: "Tunnel streams currently open", registers: [registry] }),
    tunnels: new Counter({ name: "entangle_tunnel_streams_total", help: "Tunnel streams by outcome", labelNames: ["result"], registers: [registry] }),
    dials: new Counter({ name: "entangle_dials_total", help: "Peer dials by result", labelNames: ["result"], registers: [registry] }),
    authFailures: new Counter({ name: "entangle_auth_failures_total", help: "Membership proofs that failed", registers: [registry] }),
    members: new Gauge({ name: "entangle_authenticated_peers", help: "Peers that proved the network token", registers: [registry] }),
  };
  const sent = m.bytes.labels("sent");
  const received = m.bytes.labels("received");
  return { ...m, counters: { sent: (n: number) => sent.inc(n), received: (n: number) => received.inc(n) } };
}

export type Metrics = ReturnType<typeof createMetrics>;
