// Third step of `npm run build` (after `pepr build` wrote dist/entangle-chart/, called by
// hack/package.sh): gives Pepr's generated Helm chart the values an Entangle user expects.
//
//   node hack/chart.ts [CHART_DIR]        (default dist/entangle-chart; edits it in place)
//
// Pepr's chart only knows Pepr's settings (admission.*, watcher.*, each with an `env` list). This
// adds top-level values, rendered by templates/_entangle.tpl into both module Deployments'
// environment (lib/config.ts reads it), and documents the Pepr values a user needs:
//
//   agent.image.repository/tag -> ENTANGLE_AGENT_IMAGE      agent.logLevel -> ENTANGLE_AGENT_LOG_LEVEL
//   agent.image.pullPolicy     -> ENTANGLE_AGENT_PULL_POLICY logLevel       -> LOG_LEVEL (the module)
//   peers                      -> ENTANGLE_PEERS            moduleImage    -> both Deployments' image
//   bootstrap                  -> ENTANGLE_BOOTSTRAP
//
// Their defaults come from the build (package.json "pepr.env"), so `helm template` with default
// values renders the same objects as dist/pepr-module-entangle.yaml. Every edit of a generated
// template checks that Pepr's text is still there: a Pepr upgrade that changes it fails the build.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMap, isScalar, isSeq, parseDocument, type Document, type YAMLMap } from "yaml";
import { STARTUP_PROBE } from "./startup-probe.ts";

/** The environment variables the chart's own values manage (removed from Pepr's env lists). */
export const MANAGED_ENV = [
  "LOG_LEVEL",
  "ENTANGLE_AGENT_IMAGE",
  "ENTANGLE_AGENT_PULL_POLICY",
  "ENTANGLE_AGENT_LOG_LEVEL",
  "ENTANGLE_PEERS",
  "ENTANGLE_BOOTSTRAP",
];
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
const CONTROLLERS = ["admission", "watcher"] as const;

/** "registry:5000/name:tag" -> ["registry:5000/name", "tag"]; no tag -> "latest" (what Kubernetes pulls). */
export function splitImage(image: string): [string, string] {
  const colon = image.lastIndexOf(":");
  if (colon > image.lastIndexOf("/")) return [image.slice(0, colon), image.slice(colon + 1)];
  return [image, "latest"];
}

/** Replaces `from` (which must occur exactly `times` times) in a generated file. */
function replaceChecked(text: string, from: string, to: string, file: string, times = 1): string {
  const found = text.split(from).length - 1;
  if (found !== times) throw new Error(`${file}: expected ${times} of ${JSON.stringify(from)}, found ${found} (did Pepr's chart change?)`);
  return text.split(from).join(to);
}

const HELPERS = `{{/* Entangle's settings as environment variables of both module Deployments (hack/chart.ts). */}}
{{- define "entangle.env" -}}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: ENTANGLE_AGENT_IMAGE
  value: {{ printf "%s:%s" .Values.agent.image.repository (toString .Values.agent.image.tag) | quote }}
{{- with .Values.agent.image.pullPolicy }}
- name: ENTANGLE_AGENT_PULL_POLICY
  value: {{ . | quote }}
{{- end }}
{{- with .Values.agent.logLevel }}
- name: ENTANGLE_AGENT_LOG_LEVEL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.peers }}
- name: ENTANGLE_PEERS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.bootstrap }}
- name: ENTANGLE_BOOTSTRAP
  value: {{ join "," . | quote }}
{{- end }}
{{- end }}
`;

/** Pepr's deployment template with our env and the moduleImage override. */
export function patchDeployment(text: string, controller: (typeof CONTROLLERS)[number], file: string): string {
  const v = `.Values.${controller}`;
  text = replaceChecked(text, `image: {{ ${v}.image }}`, `image: {{ .Values.moduleImage | default ${v}.image }}`, file);
  const liveness = `          livenessProbe:\n            {{- toYaml ${v}.livenessProbe | nindent 12 }}\n`;
  text = replaceChecked(text, liveness, `${liveness}          startupProbe:\n            {{- toYaml ${v}.startupProbe | nindent 12 }}\n`, file);
  // `with`: an emptied env list must not render as "[]" followed by our entries
  return replaceChecked(
    text,
    `{{- toYaml ${v}.env | nindent 12 }}`,
    `{{- with ${v}.env }}\n            {{- toYaml . | nindent 12 }}\n            {{- end }}\n            {{- include "entangle.env" . | nindent 12 }}`,
    file,
  );
}

const TOP_COMMENT = `Entangle's settings (hack/chart.ts). Both module Deployments (admission: pepr-entangle,
watcher: pepr-entangle-watcher) get them as environment variables; a change rolls both.`;

function comment(doc: Document, path: string[], text: string): void {
  const parent = path.length > 1 ? doc.getIn(path.slice(0, -1)) : doc.contents;
  if (!isMap(parent)) throw new Error(`values.yaml: ${path.slice(0, -1).join(".")} is not a map`);
  const pair = (parent as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]);
  if (!pair) throw new Error(`values.yaml: no ${path.join(".")}`);
  (pair.key as { commentBefore?: string }).commentBefore = text
    .split("\n")
    .map((l) => ` ${l}`)
    .join("\n");
}

/** values.yaml: our settings first, defaults taken out of Pepr's env lists, comments on what users set. */
export function patchValues(source: string): string {
  const doc = parseDocument(source);
  const taken: Record<string, string> = {};
  for (const c of CONTROLLERS) {
    const env = doc.getIn([c, "env"]);
    if (!isSeq(env)) throw new Error(`values.yaml: ${c}.env is not a list`);
    env.items = env.items.filter((item) => {
      const e = (item as { toJSON(): { name: string; value?: string } }).toJSON();
      if (!MANAGED_ENV.includes(e.name)) return true;
      taken[e.name] ??= e.value ?? "";
      return false;
    });
  }
  const [repository, tag] = splitImage(taken.ENTANGLE_AGENT_IMAGE || "ghcr.io/entangle-ts/entangle:latest");
  const ours = parseDocument(
    [
      "agent:",
      "  image:",
      `    repository: ${JSON.stringify(repository)}`,
      `    tag: ${JSON.stringify(tag)}`,
      `    pullPolicy: ${JSON.stringify(taken.ENTANGLE_AGENT_PULL_POLICY ?? "")}`,
      `  logLevel: ${JSON.stringify(taken.ENTANGLE_AGENT_LOG_LEVEL ?? "")}`,
      `logLevel: ${JSON.stringify(taken.LOG_LEVEL || "info")}`,
      `peers: ${JSON.stringify(taken.ENTANGLE_PEERS ? taken.ENTANGLE_PEERS.split(",").map((s) => s.trim()) : [])}`,
      `bootstrap: ${JSON.stringify(taken.ENTANGLE_BOOTSTRAP ? taken.ENTANGLE_BOOTSTRAP.split(",").map((s) => s.trim()) : [])}`,
      `moduleImage: ""`,
    ].join("\n"),
  );
  comment(ours, ["agent"], `${TOP_COMMENT}\n\nThe agents the module renders (Entanglement Deployments, sidecars).`);
  comment(ours, ["agent", "image"], "ENTANGLE_AGENT_IMAGE = repository:tag (an Entanglement's spec.image overrides it)");
  comment(ours, ["agent", "image", "pullPolicy"], 'ENTANGLE_AGENT_PULL_POLICY: Always, IfNotPresent or Never; "" = Kubernetes\' default');
  comment(ours, ["agent", "logLevel"], `ENTANGLE_AGENT_LOG_LEVEL of the agents: ${LOG_LEVELS.join(", ")}; "" = info`);
  comment(ours, ["logLevel"], `LOG_LEVEL of the module's controllers: ${LOG_LEVELS.join(", ")}`);
  comment(
    ours,
    ["peers"],
    "ENTANGLE_PEERS: relays / rendezvous peers every agent dials, HOST:PORT or a multiaddr\n(e.g. [relay.example.com:4001, /ip4/10.0.0.5/tcp/4001/p2p/12D3Koo…]); [] = none (mDNS only)",
  );
  comment(
    ours,
    ["bootstrap"],
    "ENTANGLE_BOOTSTRAP: the DHT's bootstrap peers (multiaddrs) every agent starts from;\n[] = the public libp2p bootstrap peers, [none] = no DHT (explicit peers, token peers, mDNS only)",
  );
  comment(ours, ["moduleImage"], "The module's image (Pepr's controller) for both Deployments; \"\" = admission.image / watcher.image");

  for (const c of CONTROLLERS) {
    const name = c === "admission" ? "pepr-entangle, the webhooks" : "pepr-entangle-watcher, the reconcilers";
    comment(doc, [c], `Pepr's settings of the ${c} Deployment (${name}).`);
    comment(doc, [c, "env"], "More environment variables (the settings above are added after these)");
    comment(doc, [c, "image"], "Pepr's controller image running the module (moduleImage overrides it)");
    (doc.getIn([c]) as YAMLMap).add(doc.createPair("startupProbe", STARTUP_PROBE));
    comment(doc, [c, "startupProbe"], "Time to start (the liveness probe waits for it): 5 minutes, for slow or busy nodes");
    comment(doc, [c, "resources"], "Requests and limits of its container");
    comment(doc, [c, "nodeSelector"], "Scheduling of its pods: nodeSelector, tolerations and affinity below");
  }
  const top = doc.contents as YAMLMap;
  top.items.unshift(...(ours.contents as YAMLMap).items);
  return doc.toString({ lineWidth: 0 });
}

type Schema = { definitions: Record<string, { properties?: Record<string, unknown>; [k: string]: unknown }> };

/** values.schema.json: our values (Pepr's schema refuses unknown keys); resources free-form. */
export function patchSchema(source: string): string {
  const schema = JSON.parse(source) as Schema;
  const values = schema.definitions.Values;
  if (!values?.properties) throw new Error("values.schema.json: no definitions.Values.properties");
  const str = { type: "string" };
  values.properties.agent = {
    type: "object",
    additionalProperties: false,
    properties: {
      image: {
        type: "object",
        additionalProperties: false,
        properties: {
          repository: { type: "string", minLength: 1 },
          tag: { type: ["string", "number"] },
          pullPolicy: { type: "string", enum: ["", "Always", "IfNotPresent", "Never"] },
        },
        required: ["repository", "tag"],
      },
      logLevel: { type: "string", enum: ["", ...LOG_LEVELS] },
    },
    required: ["image"],
  };
  values.properties.logLevel = { type: "string", enum: LOG_LEVELS };
  values.properties.peers = { anyOf: [{ type: "array", items: str }, str] };
  values.properties.bootstrap = { type: "array", items: str };
  values.properties.moduleImage = str;
  // Pepr's schema refuses unknown keys of admission/watcher: allow our startupProbe (hack/startup-probe.ts)
  const controller = schema.definitions.Admission;
  if (!controller?.properties) throw new Error("values.schema.json: no definitions.Admission.properties");
  controller.properties.startupProbe = { type: "object" };
  // Pepr's schema requires requests and limits with both cpu and memory: too strict for users.
  if (!schema.definitions.Resources) throw new Error("values.schema.json: no definitions.Resources");
  schema.definitions.Resources = { type: "object", additionalProperties: true };
  return JSON.stringify(schema, null, 2) + "\n";
}

/** Chart.yaml: the module's version as appVersion (Pepr leaves Helm's template value). */
export function patchChart(source: string, version: string): string {
  const doc = parseDocument(source);
  doc.set("appVersion", version);
  return doc.toString({ lineWidth: 0 });
}

export function patchChartDir(dir: string, version: string): void {
  const edit = (file: string, fn: (text: string) => string) => {
    const path = join(dir, file);
    writeFileSync(path, fn(readFileSync(path, "utf8")));
  };
  edit("values.yaml", patchValues);
  edit("values.schema.json", patchSchema);
  edit("Chart.yaml", (t) => patchChart(t, version));
  for (const c of CONTROLLERS) {
    const file = `templates/${c}-deployment.yaml`;
    edit(file, (t) => patchDeployment(t, c, file));
  }
  // a ClusterRole has no namespace (the flat YAML's has none)
  edit("templates/cluster-role.yaml", (t) => replaceChecked(t, "\n  namespace: pepr-system\n", "\n", "templates/cluster-role.yaml"));
  writeFileSync(join(dir, "templates/_entangle.tpl"), HELPERS);
}

if (import.meta.main) {
  try {
    const dir = process.argv[2] ?? "dist/entangle-chart";
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    patchChartDir(dir, version);
    process.stderr.write(`chart: ${dir} (Entangle values, schema, appVersion ${version})\n`);
  } catch (err) {
    process.stderr.write(`chart: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
