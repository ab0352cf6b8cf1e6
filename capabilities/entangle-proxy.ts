// Manifests controller (the original's entangle-proxy): Pepr bindings only, logic in lib/.
import { Capability } from "pepr";
import { Manifests } from "../lib/crds/index.ts";
import { finalizeManifests, onManifestsEvent } from "../lib/controller/manifests.ts";

export const EntangleProxy = new Capability({
  name: "entangle-proxy",
  description: "Applies Manifests to remote clusters over the entangle network",
});

const { When } = EntangleProxy;

When(Manifests)
  .IsCreatedOrUpdated()
  .Reconcile((cr) => onManifestsEvent(cr))
  .Finalize((cr) => finalizeManifests(cr));

// Finalize() also registers a mutating webhook on every Manifests create, update and delete that
// only adds the finalizer. The reconcile adds it itself before anything is applied remotely
// (lib/controller/manifests.ts addFinalizer), so that webhook is dropped: `kubectl apply` of 200
// Manifests waited 11.5 s of its 19.6 s on it (issue 11). Pepr's watch half of Finalize (the
// finalizer's removal once the remote objects are deleted) stays.
for (let i = EntangleProxy.bindings.length - 1; i >= 0; i--) {
  const b = EntangleProxy.bindings[i] as { isMutate?: boolean; isFinalize?: boolean };
  if (b.isMutate && b.isFinalize) EntangleProxy.bindings.splice(i, 1);
}
