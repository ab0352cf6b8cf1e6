// Sidecar injection at Pod admission. Mutate adds the agent, or marks why not (labels incomplete:
// NOT_INJECTED_ANNOTATION, which the sidecar guard reads); Validate (which runs after all
// mutations) admits every pod but attaches warnings that `kubectl` prints when labels are
// incomplete or the Secret is missing (the sidecar then waits for it, and the pod's status says
// why: CreateContainerConfigError naming the Secret).
import type { PeprMutateRequest, PeprValidateRequest, a } from "pepr";
import {
  INJECTED_ANNOTATION,
  NOT_INJECTED_ANNOTATION,
  alreadyInjected,
  notInjectedReason,
  parseSidecarRequest,
  sidecarPatch,
  sidecarWarnings,
} from "../render/sidecar.ts";
import { checkTokenSecret } from "../k8s/secrets.ts";
import { moduleConfig, type ModuleConfig } from "../config.ts";

export function mutatePod(req: PeprMutateRequest<a.Pod>, cfg: ModuleConfig = moduleConfig()): void {
  const pod = req.Raw;
  const parsed = parseSidecarRequest(pod);
  // marked, so the sidecar guard (lib/admission) knows the webhook saw it
  const skipped = notInjectedReason(pod, parsed);
  if (skipped !== undefined) {
    req.SetAnnotation(NOT_INJECTED_ANNOTATION, skipped);
    return;
  }
  if (parsed.kind !== "ok" || alreadyInjected(pod)) return;
  const patch = sidecarPatch(pod, parsed.request, cfg);
  pod.spec = pod.spec ?? { containers: [] };
  pod.spec.initContainers = patch.initContainers;
  if (patch.hostNetwork) pod.spec.hostNetwork = true;
  if (patch.dnsPolicy) pod.spec.dnsPolicy = patch.dnsPolicy;
  for (const [k, v] of Object.entries(patch.annotations)) req.SetAnnotation(k, v);
}

export async function validatePod(req: PeprValidateRequest<a.Pod>) {
  const parsed = parseSidecarRequest(req.Raw);
  const warnings = sidecarWarnings(req.Raw, parsed);
  // the Secret matters only when our sidecar is in the pod
  if (parsed.kind !== "ok" || req.Raw.metadata?.annotations?.[INJECTED_ANNOTATION] === undefined)
    return req.Approve(warnings.length > 0 ? warnings : undefined);
  const namespace = req.Raw.metadata?.namespace || req.Request.namespace || "default";
  const secret = await checkTokenSecret(namespace, parsed.request.secret);
  if (!secret.ok) warnings.push(`entangle: ${secret.message}; the sidecar starts once it exists`);
  return req.Approve(warnings.length > 0 ? warnings : undefined);
}
