// hack/chart.ts: the edits `npm run build` makes to Pepr's generated Helm chart. The chart itself
// is linted and rendered by the real helm in test/k8s/packaging.test.ts.
import { describe, expect, it } from "vitest";
import yaml from "js-yaml";
import { MANAGED_ENV, patchDeployment, patchSchema, patchValues, splitImage } from "../../hack/chart.ts";

const PEPR_VALUES = `imagePullSecrets: []
admission:
  env:
    - name: 'PEPR_PRETTY_LOG'
      value: 'false'
    - name: 'LOG_LEVEL'
      value: 'info'
    - name: 'ENTANGLE_AGENT_IMAGE'
      value: 'registry.local:5000/team/entangle:2.0.1'
  image: 'ghcr.io/defenseunicorns/pepr/controller:v1.1.4'
  resources: {}
  nodeSelector: {}
watcher:
  env:
    - name: 'PEPR_PRETTY_LOG'
      value: 'false'
    - name: 'ENTANGLE_PEERS'
      value: '10.0.0.1:4001, /ip4/10.0.0.2/tcp/4001'
    - name: 'ENTANGLE_BOOTSTRAP'
      value: 'none'
  image: 'ghcr.io/defenseunicorns/pepr/controller:v1.1.4'
  resources: {}
  nodeSelector: {}
`;

describe("hack/chart.ts", () => {
  it("splits image references at the tag, not at a registry port", () => {
    expect(splitImage("ghcr.io/entangle-ts/entangle:0.1.0")).toEqual(["ghcr.io/entangle-ts/entangle", "0.1.0"]);
    expect(splitImage("registry.local:5000/entangle")).toEqual(["registry.local:5000/entangle", "latest"]);
    expect(splitImage("registry.local:5000/entangle:dev")).toEqual(["registry.local:5000/entangle", "dev"]);
  });

  it("takes the build's settings out of Pepr's env lists and makes them the values' defaults", () => {
    const values = yaml.load(patchValues(PEPR_VALUES)) as Record<string, any>;
    expect(values.agent).toEqual({ image: { repository: "registry.local:5000/team/entangle", tag: "2.0.1", pullPolicy: "" }, logLevel: "" });
    expect(values.logLevel).toBe("info");
    expect(values.peers).toEqual(["10.0.0.1:4001", "/ip4/10.0.0.2/tcp/4001"]);
    expect(values.bootstrap).toEqual(["none"]);
    expect(values.moduleImage).toBe("");
    for (const c of ["admission", "watcher"]) {
      expect(values[c].env).toEqual([{ name: "PEPR_PRETTY_LOG", value: "false" }]);
      for (const name of MANAGED_ENV) expect(values[c].env.map((e: { name: string }) => e.name)).not.toContain(name);
    }
    // documented where users look
    expect(patchValues(PEPR_VALUES)).toMatch(/# ENTANGLE_PEERS: relays/);
    expect(patchValues(PEPR_VALUES)).toMatch(/# ENTANGLE_BOOTSTRAP: the DHT's bootstrap peers/);
  });

  it("fails the build when Pepr's templates no longer have what it edits", () => {
    const template =
      "          image: {{ .Values.watcher.image }}\n            {{- toYaml .Values.watcher.env | nindent 12 }}\n" +
      "          livenessProbe:\n            {{- toYaml .Values.watcher.livenessProbe | nindent 12 }}\n";
    expect(patchDeployment(template, "watcher", "w.yaml")).toContain('{{- include "entangle.env" . | nindent 12 }}');
    expect(patchDeployment(template, "watcher", "w.yaml")).toContain("startupProbe:\n            {{- toYaml .Values.watcher.startupProbe | nindent 12 }}");
    expect(() => patchDeployment(template.replace("livenessProbe:", "liveness:"), "watcher", "w.yaml")).toThrow(/did Pepr's chart change/);
    expect(() => patchDeployment(template.replace("watcher.env", "watcher.environment"), "watcher", "w.yaml")).toThrow(/did Pepr's chart change/);
    expect(() => patchDeployment(template, "admission", "a.yaml")).toThrow(/a\.yaml: expected 1/);
  });

  it("adds its values to the schema, which refuses unknown keys", () => {
    const pepr = {
      definitions: {
        Values: { additionalProperties: false, properties: {} },
        Admission: { additionalProperties: false, properties: {} },
        Resources: { additionalProperties: false },
      },
    };
    const schema = JSON.parse(patchSchema(JSON.stringify(pepr)));
    expect(Object.keys(schema.definitions.Values.properties).sort()).toEqual(["agent", "bootstrap", "logLevel", "moduleImage", "peers"]);
    expect(schema.definitions.Values.additionalProperties).toBe(false);
    expect(schema.definitions.Resources).toEqual({ type: "object", additionalProperties: true });
    expect(schema.definitions.Admission.properties.startupProbe).toEqual({ type: "object" }); // admission and watcher share it
  });
});
