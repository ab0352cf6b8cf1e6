// The watcher applies the sidecar guard at start, like the CRDs: `npx pepr deploy` installs only
// what Pepr generates, so the module itself must bring the guard for every install path.
import { K8s, Log, RegisterKind, a } from "pepr";
import { sidecarGuard } from "./sidecar-guard.ts";

class ValidatingAdmissionPolicy extends a.GenericKind {}
class ValidatingAdmissionPolicyBinding extends a.GenericKind {}
const group = "admissionregistration.k8s.io";
RegisterKind(ValidatingAdmissionPolicy, { group, version: "v1", kind: "ValidatingAdmissionPolicy", plural: "validatingadmissionpolicies" });
RegisterKind(ValidatingAdmissionPolicyBinding, { group, version: "v1", kind: "ValidatingAdmissionPolicyBinding", plural: "validatingadmissionpolicybindings" });

/** Never fatal: without the guard (an API server older than 1.30) injection still works when the module runs. */
export async function ensureSidecarGuard(ignoredNamespaces: string[]): Promise<void> {
  const [policy, binding] = sidecarGuard(ignoredNamespaces);
  try {
    await K8s(ValidatingAdmissionPolicy).Apply(policy as ValidatingAdmissionPolicy, { force: true });
    await K8s(ValidatingAdmissionPolicyBinding).Apply(binding as ValidatingAdmissionPolicyBinding, { force: true });
    Log.info({ policy: policy.metadata.name }, "sidecar guard applied");
  } catch (err) {
    Log.warn(
      { err: (err as Error).message },
      "cannot apply the sidecar guard (ValidatingAdmissionPolicy, Kubernetes >= 1.30): while the module is down, pods asking for the sidecar would start without it",
    );
  }
}

/** Uninstall (hack/module.sh down): the guard goes with the module's webhooks. */
export async function removeSidecarGuard(): Promise<void> {
  const [policy, binding] = sidecarGuard([]);
  await K8s(ValidatingAdmissionPolicyBinding)
    .Delete(binding.metadata.name)
    .catch(() => undefined);
  await K8s(ValidatingAdmissionPolicy)
    .Delete(policy.metadata.name)
    .catch(() => undefined);
}
