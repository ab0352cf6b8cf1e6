// Manifests controller (the original's entangle-proxy): Pepr bindings only, logic in lib/.
import { Capability } from "pepr";
import { Manifests } from "../lib/crds/index.ts";
import { onManifestsDeleted, onManifestsEvent } from "../lib/controller/manifests.ts";
import { everyPhase } from "./every-phase.ts";
import { DELETED } from "../lib/k8s/api.ts";

export const EntangleProxy = new Capability({
  name: "entangle-proxy",
  description: "Applies Manifests to remote clusters over the entangle network",
});

const { When } = EntangleProxy;

// No Pepr Finalize(): the reconcile adds the finalizer before anything is applied remotely and, on
// a CR being deleted, deletes what it applied and removes the finalizer (lib/controller/manifests.ts).
// Finalize() put a mutating webhook on every Manifests create, update and delete only to add the
// finalizer (`kubectl apply` of 200 Manifests waited 11.5 s of its 19.6 s on it, issue 11), and its
// watch half finalized each deleted CR a second time, racing the reconcile for the same patch.
// One watch for every phase (capabilities/every-phase.ts). What every CR declares is kept in
// memory (never ours to delete for another CR): one gone is forgotten.
everyPhase(EntangleProxy, () =>
  When(Manifests)
    .IsCreatedOrUpdated()
    .Reconcile((cr, phase) => (phase === DELETED ? onManifestsDeleted(cr) : onManifestsEvent(cr))),
);
