// Finds dead connections without killing busy ones. libp2p's connection monitor aborts a
// connection whose heartbeat round trip takes longer than 5 s. Behind a saturated link that is
// any connection carrying bulk transfers: each tunnel stream may have a window (4 MiB) in
// flight, and the heartbeat queues behind it. Measured over a 16 Mbit/s link: three 8 MiB
// downloads cut after 14 s, every tunnel on the connection reset; without the abort, all three
// complete in 40 s. Here a heartbeat that fails condemns the connection only if nothing at all
// arrived on it meanwhile: a partitioned or dead peer sends nothing, a congested one does.
import type { Connection, Startable } from "@libp2p/interface";

/** libp2p's monitor's protocol. Nobody handles it: the "unsupported protocol" answer is the round trip. */
export const HEARTBEAT_PROTOCOL = "/ipfs/ping/1.0.0";
export const HEARTBEAT_INTERVAL_MS = 10_000;
export const HEARTBEAT_TIMEOUT_MS = 10_000;

export interface LivenessInit {
  intervalMs?: number;
  timeoutMs?: number;
}

interface LivenessComponents {
  connectionManager: { getConnections(): Connection[] };
}

/** A heartbeat's outcome and what arrived during it decide; pure, so the rule is in one place. */
export function isDead(heartbeat: "answered" | "failed", bytesArrived: number): boolean {
  return heartbeat === "failed" && bytesArrived === 0;
}

class Liveness implements Startable {
  private timer?: NodeJS.Timeout;
  private readonly probing = new WeakSet<Connection>();
  private readonly components: LivenessComponents;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;

  constructor(components: LivenessComponents, init: LivenessInit) {
    this.components = components;
    this.intervalMs = init.intervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.timeoutMs = init.timeoutMs ?? HEARTBEAT_TIMEOUT_MS;
  }

  start(): void {
    this.timer = setInterval(() => {
      for (const conn of this.components.connectionManager.getConnections()) void this.heartbeat(conn);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async heartbeat(conn: Connection): Promise<void> {
    if (this.probing.has(conn) || conn.status !== "open") return;
    this.probing.add(conn);
    // what the connection's transport delivers (before decryption): not in Connection's type
    const transport = (conn as unknown as { maConn?: EventTarget }).maConn;
    let arrived = 0;
    const count = (evt: Event) => void (arrived += (evt as Event & { data?: { byteLength: number } }).data?.byteLength ?? 1);
    transport?.addEventListener("message", count);
    let outcome: "answered" | "failed" = "answered";
    try {
      const stream = await conn.newStream(HEARTBEAT_PROTOCOL, { signal: AbortSignal.timeout(this.timeoutMs), runOnLimitedConnection: true });
      stream.abort(new Error("heartbeat answered"));
    } catch (err) {
      if ((err as Error).name !== "UnsupportedProtocolError") outcome = "failed";
    } finally {
      transport?.removeEventListener("message", count);
      this.probing.delete(conn);
    }
    if (conn.status === "open" && isDead(outcome, arrived)) conn.abort(new Error(`no heartbeat answer and nothing received for ${this.timeoutMs} ms`));
  }
}

/** A libp2p service: give it the place of libp2p's connection monitor (`connectionMonitor: { enabled: false }`). */
export function liveness(init: LivenessInit = {}): (components: LivenessComponents) => Liveness {
  return (components) => new Liveness(components, init);
}
