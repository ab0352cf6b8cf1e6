// What `pepr dev` sets up in the cluster before it runs a module, but with the webhook URL on
// our own host:port (pepr dev hard-codes port 3000, so two modules could not run side by side):
// the pepr-system namespace, the PeprStore CRD, and the mutating/validating webhook
// configurations whose rules come from the capabilities' bindings.
//   node hack/module/webhooks.ts up URL CA_FILE API_PATH     (KUBECONFIG from the environment)
//   node hack/module/webhooks.ts down                         (also removes the sidecar guard)
import { readFileSync } from "node:fs";
import { K8s, kind } from "pepr";
import cfg from "../../package.json" with { type: "json" };
import { capabilities } from "../../capabilities/index.ts";
import { removeSidecarGuard } from "../../lib/admission/apply.ts";

const name = `pepr-${cfg.pepr.uuid}`;
const objectSelector = (cfg.pepr as { webhookObjectSelector?: unknown }).webhookObjectSelector;
const ignoredNamespaces = ["kube-system", "pepr-system", ...(cfg.pepr.alwaysIgnore?.namespaces ?? [])];

interface BindingLike {
  event: string;
  kind: { group: string; version?: string; kind: string; plural?: string };
  isMutate?: boolean;
  isValidate?: boolean;
  isFinalize?: boolean;
}

function rules(type: "mutate" | "validate") {
  const seen = new Set<string>();
  const out = [];
  for (const cap of capabilities) {
    for (const b of cap.bindings as unknown as BindingLike[]) {
      if (type === "mutate" ? !b.isMutate : !b.isValidate) continue;
      const operations = b.event === "CREATEORUPDATE" ? ["CREATE", "UPDATE"] : [b.event];
      const resource = b.kind.plural ?? `${b.kind.kind.toLowerCase()}s`;
      const rule = { apiGroups: [b.kind.group], apiVersions: [b.kind.version || "*"], operations, resources: [resource] };
      const key = JSON.stringify(rule);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(rule);
    }
  }
  return out;
}

function webhookConfig(type: "mutate" | "validate", url: string, ca: string, apiPath: string) {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: type === "mutate" ? "MutatingWebhookConfiguration" : "ValidatingWebhookConfiguration",
    metadata: { name },
    webhooks: [
      {
        name: `${name}.pepr.dev`,
        admissionReviewVersions: ["v1", "v1beta1"],
        clientConfig: { url: `${url}/${type}/${apiPath}`, caBundle: Buffer.from(ca).toString("base64") },
        failurePolicy: cfg.pepr.onError === "reject" ? "Fail" : "Ignore",
        matchPolicy: "Equivalent",
        timeoutSeconds: cfg.pepr.webhookTimeout ?? 10,
        namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ignoredNamespaces }] },
        // as patches/pepr+1.1.4.patch has Pepr generate it: the agent pods never reach the webhook
        ...(objectSelector ? { objectSelector } : {}),
        rules: rules(type),
        sideEffects: "None",
      },
    ],
  };
}

const peprStoreCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "peprstores.pepr.dev" },
  spec: {
    group: "pepr.dev",
    scope: "Namespaced",
    names: { plural: "peprstores", singular: "peprstore", kind: "PeprStore" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: "object", properties: { data: { type: "object", additionalProperties: { type: "string" } } } } },
      },
    ],
  },
};

async function up(url: string, caFile: string, apiPath: string): Promise<void> {
  const ca = readFileSync(caFile, "utf8");
  await K8s(kind.Namespace).Apply({ metadata: { name: "pepr-system" } }, { force: true });
  await K8s(kind.CustomResourceDefinition).Apply(peprStoreCrd, { force: true });
  const mutate = webhookConfig("mutate", url, ca, apiPath);
  const validate = webhookConfig("validate", url, ca, apiPath);
  if (mutate.webhooks[0].rules.length) await K8s(kind.MutatingWebhookConfiguration).Apply(mutate as kind.MutatingWebhookConfiguration, { force: true });
  if (validate.webhooks[0].rules.length) await K8s(kind.ValidatingWebhookConfiguration).Apply(validate as kind.ValidatingWebhookConfiguration, { force: true });
}

async function down(): Promise<void> {
  // the module's webhooks and the sidecar guard its watcher applied (it would refuse pods that
  // ask for the sidecar once no module runs)
  await removeSidecarGuard();
  await K8s(kind.MutatingWebhookConfiguration)
    .Delete(name)
    .catch(() => undefined);
  await K8s(kind.ValidatingWebhookConfiguration)
    .Delete(name)
    .catch(() => undefined);
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === "up" && args.length === 3) await up(args[0], args[1], args[2]);
  else if (cmd === "down") await down();
  else throw new Error("usage: webhooks.ts up URL CA_FILE API_PATH | down");
} catch (err) {
  console.error(`webhooks: ${(err as Error).message}`);
  process.exit(1);
}
