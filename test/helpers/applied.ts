// A Manifests status record of a ConfigMap in "default", for unit tests of the pure helpers.
import type { AppliedObject } from "../../lib/crds/manifests.ts";

export const appliedConfigMap = (name: string, state: AppliedObject["state"] = "Applied"): AppliedObject => ({
  index: 0,
  apiVersion: "v1",
  kind: "ConfigMap",
  namespace: "default",
  name,
  state,
});
