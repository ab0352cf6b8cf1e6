import { describe, expect, it } from "vitest";
import { sidecarGuard } from "../../lib/admission/sidecar-guard.ts";
import { INJECTED_ANNOTATION, NOT_INJECTED_ANNOTATION, REQUIRED, notInjectedReason, parseSidecarRequest, type PodLike } from "../../lib/render/sidecar.ts";

const LABELS = { "entanglement.kairos.io/name": "tok", "entanglement.kairos.io/service": "web", "entanglement.kairos.io/target_port": "8080" };
const reason = (pod: PodLike) => notInjectedReason(pod, parseSidecarRequest(pod));

describe("notInjectedReason: what the webhook marks on a pod that asks but gets no sidecar", () => {
  it("nothing for pods that do not ask, or get the sidecar, or already have it from us", () => {
    expect(reason({ metadata: { labels: { app: "x" } } })).toBeUndefined();
    expect(reason({ metadata: { labels: LABELS } })).toBeUndefined();
    expect(reason({ metadata: { labels: LABELS, annotations: { [INJECTED_ANNOTATION]: "connect web" } } })).toBeUndefined();
  });

  it("why, for incomplete settings and for a clashing container name", () => {
    expect(reason({ metadata: { labels: { "entanglement.kairos.io/service": "web" } } })).toMatch(
      /^entangle sidecar not injected: missing entanglement.kairos.io\/name/,
    );
    expect(reason({ metadata: { labels: LABELS }, spec: { containers: [{ name: "entangle-agent" }] } })).toMatch(
      /already has a container named entangle-agent/,
    );
  });

  it("our own marks are not settings", () => {
    expect(parseSidecarRequest({ metadata: { annotations: { [NOT_INJECTED_ANNOTATION]: "x", [INJECTED_ANNOTATION]: "y" } } })).toEqual({ kind: "none" });
  });
});

describe("sidecarGuard", () => {
  const [policy, binding] = sidecarGuard(["edge-system"]);
  const spec = policy.spec as any;

  it("skips the namespaces the module's webhooks skip, plus the configured ones", () => {
    expect(spec.matchConstraints.namespaceSelector.matchExpressions[0].values).toEqual(["kube-system", "pepr-system", "edge-system"]);
    expect(spec.matchConstraints.resourceRules).toEqual([{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }]);
  });

  it("matches pods carrying any required setting as label or annotation; passes those the webhook marked", () => {
    const match = spec.matchConditions[0].expression as string;
    for (const k of REQUIRED) {
      expect(match).toContain(`"entanglement.kairos.io/${k}" in object.metadata.labels`);
      expect(match).toContain(`"entanglement.kairos.io/${k}" in object.metadata.annotations`);
    }
    const check = spec.validations[0].expression as string;
    expect(check).toContain(`"${INJECTED_ANNOTATION}" in object.metadata.annotations`);
    expect(check).toContain(`"${NOT_INJECTED_ANNOTATION}" in object.metadata.annotations`);
    expect(spec.failurePolicy).toBe("Fail");
    expect((binding.spec as any).validationActions).toEqual(["Deny"]);
  });
});
