// Pepr's When() has no "any event": a created-or-updated binding plus a deleted one are two
// watches of the kind, each receiving and parsing every event (issue 11). everyPhase() turns the
// watch binding that `register` adds into one for every phase (created, changed, deleted); its
// callback is told which.
import type { Capability } from "pepr";

export function everyPhase(capability: Capability, register: () => unknown): void {
  const before = capability.bindings.length;
  register();
  // only the watch binding just added (none where Pepr registers no watches: admission, tools)
  for (const b of capability.bindings.slice(before) as { isWatch?: boolean; event: string }[]) if (b.isWatch) b.event = "*";
}
