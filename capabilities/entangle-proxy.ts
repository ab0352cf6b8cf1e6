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
