export {
  Entanglement,
  entanglementGVK,
  type EntanglementSpec,
  type EntanglementStatus,
  type EnvVar,
  type ServiceSpecLike,
  type ServicePortLike,
} from "./entanglement.ts";
export { Manifests, manifestsGVK, type ManifestsSpec, type ManifestsStatus, type AppliedObject } from "./manifests.ts";
export { crds, crdsYaml, entanglementCrd, manifestsCrd } from "./definitions.ts";
export { setCondition, type Condition } from "./conditions.ts";
