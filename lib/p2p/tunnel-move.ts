// Moving an open tunnel to a better connection to the same peer (issue 9): a tunnel opened while
// a provider was reached only through a relay stays on its relayed stream until it ends; when a
// direct connection to that peer appears (hole punching), the tunnel's bytes move to it.
//
// Over /entangle/tunnel/1.2.0 the connect side sends a random tunnel id right behind the service
// tag. To move, it opens a /entangle/tunnel-move/1.0.0 stream on the better connection and sends
// that id; the exposing side (same peer, a proved member) answers one byte. OK: it sends its
// further bytes on the new stream and closes its writes on the old one; the connect side, on the
// OK, does the same. Each side reads the old stream to its end, then the new one (pipe.ts), so
// the old stream's FIN is each direction's handover mark and no byte is lost or reordered. A side
// whose writes had already ended (a real FIN on the old stream before the move) closes its writes
// on the new stream at once: once moved, only the new stream's FIN is a real end, so neither
// message needs a flag for it. Until the answer, the connect side does not judge an end of the
// old stream (the exposing side's handover mark may overtake its answer). Refused, or the stream
// could not be opened: the tunnel stays where it is. Asked and not answered: the tunnel is cut
// (the exposing side may have moved; its handover mark would look like a real end).
import { randomFillSync } from "node:crypto";
import type { Connection, Stream } from "@libp2p/interface";
import type { Pipe, PipeCounters } from "./pipe.ts";
import type { Path } from "./metrics.ts";

export const TUNNEL_MOVE_PROTOCOL = "/entangle/tunnel-move/1.0.0";
/** Bytes of a tunnel id (random: a guess of another tunnel's id is as hopeless as its key). */
export const TUNNEL_ID_BYTES = 16;
/** The exposing side's answer to a move. */
export const MoveAnswer = { OK: 0, UNKNOWN_TUNNEL: 1, NOT_A_MEMBER: 3 } as const;
/** How long the connect side waits for the answer (then the tunnel is cut: see above). */
export const MOVE_ANSWER_MS = 10_000;

/**
 * A new tunnel's id: random bytes, cut from a pool filled 256 ids at a time (randomBytes(16) costs
 * ~17 µs per call here, before a new client's tag can leave; a pooled one ~1 µs).
 */
export function newTunnelId(): Uint8Array {
  if (idPoolAt + TUNNEL_ID_BYTES > idPool.length) {
    randomFillSync(idPool);
    idPoolAt = 0;
  }
  return idPool.slice(idPoolAt, (idPoolAt += TUNNEL_ID_BYTES));
}
const idPool = new Uint8Array(256 * TUNNEL_ID_BYTES);
let idPoolAt = idPool.length;

/** Whether a tunnel on a connection of path `from` should move to a new one of path `to`. */
export function better(from: Path, to: Path): boolean {
  return from === "relayed" && to === "direct";
}

/** What a move stream's first bytes say: the tunnel id, and anything else (a protocol error). */
export function parseMove(head: Uint8Array): { id: string } | { error: string } {
  if (head.byteLength !== TUNNEL_ID_BYTES) return { error: `move request of ${head.byteLength} bytes, want ${TUNNEL_ID_BYTES}` };
  return { id: Buffer.from(head).toString("hex") };
}

/** One tunnel that may move: its peer, id, pipe and the connection it runs on now. */
export interface Movable {
  peer: string;
  id: string;
  pipe: Pipe;
  /** connect side: the connection its stream runs on */
  conn?: Connection;
  /** connect side: a move under way */
  moving?: boolean;
}

/** The open tunnels of an agent that may move, by peer and id. */
export class OpenTunnels {
  private readonly byKey = new Map<string, Movable>();

  add(t: Movable): () => void {
    const key = `${t.peer} ${t.id}`;
    this.byKey.set(key, t);
    return () => {
      if (this.byKey.get(key) === t) this.byKey.delete(key);
    };
  }

  /** The tunnel of that id, only for the peer that opened it. */
  get(peer: string, id: string): Movable | undefined {
    return this.byKey.get(`${peer} ${id}`);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Connect side: the tunnels to `peer` that should move to `conn` (better than theirs, not moving). */
  toMove(peer: string, to: Path, pathOf: (c: Connection) => Path): Movable[] {
    const out: Movable[] = [];
    for (const t of this.byKey.values()) {
      if (t.peer === peer && t.conn !== undefined && !t.moving && t.pipe.open && better(pathOf(t.conn), to)) out.push(t);
    }
    return out;
  }
}

export interface MoveIo {
  /** opens the move stream on the better connection */
  open(): Promise<Stream>;
  /** the answer byte and what came with it */
  answer(stream: Stream): Promise<{ head: Uint8Array; rest: Uint8Array[] }>;
  counters: PipeCounters;
}

export type MoveOutcome = "moved" | "refused" | "unopened" | "unanswered";

/**
 * Connect side: move one tunnel (see above). Refused or unopened: it stays where it was;
 * unanswered: cut.
 */
export async function moveTunnel(t: Movable, io: MoveIo): Promise<MoveOutcome> {
  t.moving = true;
  try {
    let stream: Stream;
    try {
      stream = await io.open();
    } catch {
      return "unopened";
    }
    if (!t.pipe.open) {
      stream.abort(new Error("tunnel gone"));
      return "unopened";
    }
    t.pipe.hold();
    let answer: { head: Uint8Array; rest: Uint8Array[] };
    try {
      stream.send(Buffer.from(t.id, "hex"));
      answer = await io.answer(stream);
    } catch (err) {
      stream.abort(err as Error);
      t.pipe.release(undefined, undefined, [], true);
      return "unanswered";
    }
    if (answer.head[0] !== MoveAnswer.OK) {
      stream.abort(new Error(`move refused (${answer.head[0]})`));
      t.pipe.release();
      return "refused";
    }
    t.pipe.release(stream, io.counters, answer.rest);
    return "moved";
  } finally {
    t.moving = false;
  }
}
