// The sidecar guard: a ValidatingAdmissionPolicy (CEL, evaluated by the API server itself) that
// refuses a pod asking for the entangle sidecar when the module's webhook did not look at it.
//
// Why: the module's webhooks fail open (failurePolicy Ignore, `"onError": "audit"`), so a crashed
// or scaled-down module never blocks unrelated pods anywhere in the cluster. Without the guard, a
// pod with entangle labels would then start silently without its agent. The webhook marks every
// pod it examined that asks for the sidecar (injected, or not-injected with the reason); the
// guard refuses the ones without either mark. A Deployment's pods are retried by their
// ReplicaSet, so they start once the module is back.
import { INJECTED_ANNOTATION, NOT_INJECTED_ANNOTATION, PREFIX, REQUIRED } from "../render/sidecar.ts";

export const GUARD_NAME = "entangle-sidecar-guard";

const group = "admissionregistration.k8s.io";

export interface GuardObject {
  apiVersion: string;
  kind: "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding";
  metadata: { name: string; labels: Record<string, string> };
  spec: Record<string, unknown>;
}

/** CEL: the pod carries `key` as a label or an annotation. */
function carries(key: string): string {
  const k = JSON.stringify(key);
  return `(has(object.metadata.labels) && ${k} in object.metadata.labels) || (has(object.metadata.annotations) && ${k} in object.metadata.annotations)`;
}

export const GUARD_MESSAGE =
  "entangle: this pod asks for the entangle sidecar (entanglement.kairos.io/ labels or annotations) but Entangle's " +
  "webhook did not see it: the module is not running or not reachable. Check `kubectl -n pepr-system get pods`; " +
  "create the pod again once the module is Ready (a Deployment's ReplicaSet retries by itself), or remove the " +
  "entanglement.kairos.io/ labels to run it without the sidecar.";

/**
 * The policy and its binding. `ignoredNamespaces`: where the module's webhooks do not look (Pepr
 * skips kube-system, pepr-system and the module's alwaysIgnore list), so neither does the guard.
 */
export function sidecarGuard(ignoredNamespaces: string[]): [GuardObject, GuardObject] {
  const namespaceSelector = {
    matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: [...new Set(["kube-system", "pepr-system", ...ignoredNamespaces])] }],
  };
  const labels = { "app.kubernetes.io/managed-by": "entangle" };
  const policy: GuardObject = {
    apiVersion: `${group}/v1`,
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: GUARD_NAME, labels },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        namespaceSelector,
        resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
      },
      // only pods that ask for the sidecar: one of the required settings present
      matchConditions: [{ name: "asks-for-entangle-sidecar", expression: REQUIRED.map((k) => `(${carries(PREFIX + k)})`).join(" || ") }],
      validations: [
        {
          expression: `has(object.metadata.annotations) && (${JSON.stringify(INJECTED_ANNOTATION)} in object.metadata.annotations || ${JSON.stringify(NOT_INJECTED_ANNOTATION)} in object.metadata.annotations)`,
          message: GUARD_MESSAGE,
          reason: "Forbidden",
        },
      ],
    },
  };
  const binding: GuardObject = {
    apiVersion: `${group}/v1`,
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: GUARD_NAME, labels },
    spec: { policyName: GUARD_NAME, validationActions: ["Deny"] },
  };
  return [policy, binding];
}
