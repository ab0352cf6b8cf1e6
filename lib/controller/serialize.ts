// One reconcile at a time per object: its CR events, its Deployment's and its Secret's watch
// events arrive together, and concurrent runs would each read the same old status and each
// write it (and announce it) again.
const tails = new Map<string, Promise<void>>();

export function serialize(key: string, run: () => Promise<void>): Promise<void> {
  const next = (tails.get(key) ?? Promise.resolve()).then(run, run);
  const tail = next.catch(() => undefined);
  tails.set(key, tail);
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return next;
}
