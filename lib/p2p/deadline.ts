// A deadline for one operation on a per-tunnel path. AbortSignal.timeout() does the same job, but
// V8's scavenges do not free its signals: Node keeps them through a weak reference and, while they
// have an abort listener, in a process-wide Set. They, and whatever their listeners reached (even
// listeners removed since), went to the old space, to wait for a full GC. 300,000 of them left 37
// MiB of such garbage in a microbenchmark (72 with a listener added and removed; plain controllers
// 4.5); libp2p's stream open and close in one process promoted 113 KB per scavenge, 4-17 KB with
// its inbound negotiation patched the same way (patches/libp2p+*.patch, connection.js).

/** Runs `fn` with a signal that aborts (a TimeoutError, as AbortSignal.timeout's) after `ms`. */
export async function withDeadline<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), ms);
  timer.unref(); // like AbortSignal.timeout(), it keeps no process alive
  try {
    return await fn(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}
