import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { crds, crdsYaml, entanglementCrd, manifestsCrd } from "../../lib/crds/definitions.ts";
import { setCondition } from "../../lib/crds/conditions.ts";
import { seedObjects } from "../helpers/seed.ts";

type Any = Record<string, any>;

const version = (crd: Any) => crd.spec.versions[0];
const schemaOf = (crd: Any) => version(crd).schema.openAPIV3Schema;

/**
 * A small structural check of a value against an OpenAPI v3 schema: types, required fields,
 * enums and unknown fields (as the API server prunes / strict-decodes them). CEL rules are
 * exercised against a real API server in test/k8s.
 */
function check(schema: Any, value: unknown, path: string, errors: string[]): void {
  if (schema["x-kubernetes-int-or-string"]) {
    if (typeof value !== "string" && !Number.isInteger(value)) errors.push(`${path}: not int-or-string`);
    return;
  }
  switch (schema.type) {
    case "string":
      if (typeof value !== "string") return void errors.push(`${path}: not a string`);
      if (schema.enum && !schema.enum.includes(value)) errors.push(`${path}: ${value} not in ${schema.enum}`);
      if (schema.pattern && !new RegExp(schema.pattern).test(value)) errors.push(`${path}: does not match ${schema.pattern}`);
      return;
    case "integer":
      if (!Number.isInteger(value)) errors.push(`${path}: not an integer`);
      return;
    case "boolean":
      if (typeof value !== "boolean") errors.push(`${path}: not a boolean`);
      return;
    case "array":
      if (!Array.isArray(value)) return void errors.push(`${path}: not an array`);
      value.forEach((v, i) => check(schema.items, v, `${path}[${i}]`, errors));
      return;
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return void errors.push(`${path}: not an object`);
      for (const r of schema.required ?? []) if (!(r in value)) errors.push(`${path}.${r}: required`);
      for (const [k, v] of Object.entries(value)) {
        const sub = schema.properties?.[k];
        if (sub) check(sub, v, `${path}.${k}`, errors);
        else if (!schema["x-kubernetes-preserve-unknown-fields"]) errors.push(`${path}.${k}: unknown field`);
      }
    }
  }
}

function validate(crd: Any, obj: Any): string[] {
  const errors: string[] = [];
  check(schemaOf(crd).properties.spec, obj.spec, "spec", errors);
  return errors;
}

const seedCrs = ["outbound-entanglement", "inbound-entanglement", "inbound-entanglement-cluster-b", "control-manifests"]
  .flatMap((n) => seedObjects(n))
  .filter((o) => o.kind === "Entanglement" || o.kind === "Manifests") as Any[];

describe("CRDs", () => {
  it("crds.yaml is generated from definitions.ts (node lib/crds/write-yaml.ts)", () => {
    const file = readFileSync(new URL("../../lib/crds/crds.yaml", import.meta.url), "utf8");
    expect(file.replace(/^#.*\n/, "")).toBe(crdsYaml());
    expect(yaml.loadAll(file)).toEqual(JSON.parse(JSON.stringify(crds)));
  });

  it("groups, kinds, names and scope of the seed", () => {
    expect(entanglementCrd.metadata.name).toBe("entanglements.entangle.kairos.io");
    expect(entanglementCrd.spec.names).toMatchObject({ kind: "Entanglement", plural: "entanglements", singular: "entanglement", shortNames: ["ent"] });
    expect(manifestsCrd.metadata.name).toBe("manifests.entangle-proxy.kairos.io");
    expect(manifestsCrd.spec.names).toMatchObject({ kind: "Manifests", plural: "manifests", singular: "manifests" });
    for (const crd of crds) {
      expect(crd.apiVersion).toBe("apiextensions.k8s.io/v1");
      expect(crd.spec.scope).toBe("Namespaced");
      expect(version(crd)).toMatchObject({ name: "v1alpha1", served: true, storage: true, subresources: { status: {} } });
    }
    // no short name shadows another resource name of ours
    const all = crds.flatMap((c) => [c.spec.names.plural, c.spec.names.singular]);
    for (const crd of crds) for (const s of crd.spec.names.shortNames) expect(all).not.toContain(s);
  });

  it("every seed Entanglement and Manifests is valid against its schema", () => {
    expect(seedCrs).toHaveLength(4);
    for (const o of seedCrs) {
      const crd = o.kind === "Entanglement" ? entanglementCrd : manifestsCrd;
      expect(o.apiVersion).toBe(`${crd.spec.group}/v1alpha1`);
      expect(validate(crd, o), `${o.metadata.name}`).toEqual([]);
      for (const k of Object.keys(o.spec)) expect(Object.keys(schemaOf(crd).properties.spec.properties)).toContain(k);
    }
  });

  it("Entanglement schema: required fields, int-or-string port with a range rule, typed extras", () => {
    const spec = schemaOf(entanglementCrd).properties.spec as Any;
    // port may be left out with serviceRef only: a CEL rule (test/unit/compat.test.ts, test/k8s)
    expect(spec.required).toEqual(["serviceUUID", "secretRef"]);
    expect(Object.keys(spec.properties)).toEqual([
      "serviceUUID",
      "secretRef",
      "host",
      "port",
      "serviceRef",
      "hostNetwork",
      "inbound",
      "serviceSpec",
      "env",
      "image",
      "resources",
    ]);
    expect(spec.properties.port["x-kubernetes-int-or-string"]).toBe(true);
    expect(spec.properties.port["x-kubernetes-validations"][0]).toMatchObject({ message: "port must be a number from 1 to 65535" });
    expect(spec.properties.serviceSpec["x-kubernetes-preserve-unknown-fields"]).toBe(true);

    const base = { serviceUUID: "foo", secretRef: "mysecret", port: 80 };
    const errs = (extra: Any) => validate(entanglementCrd, { spec: { ...base, ...extra } });
    expect(errs({ port: "80" })).toEqual([]);
    expect(errs({ env: [{ name: "A", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] })).toEqual([]);
    expect(errs({ serviceSpec: { type: "NodePort", sessionAffinity: "ClientIP", ports: [{ port: 80, nodePort: 30080, targetPort: "http" }] } })).toEqual([]);
    expect(errs({ serviceSpec: { ports: [{ port: 53, protocol: "UDP" }] } })[0]).toContain("not in TCP");
    expect(errs({ env: [{ name: "A", vaule: "typo" }] })[0]).toContain("unknown field");
    expect(errs({ secretRef: "My_Secret" })[0]).toContain("spec.secretRef");
    expect(errs({ serviceUUID: " " })[0]).toContain("spec.serviceUUID");
    expect(validate(entanglementCrd, { spec: { secretRef: "s" } })).toEqual(["spec.serviceUUID: required"]);
  });

  it("Manifests schema: required fields and applied entries", () => {
    const spec = schemaOf(manifestsCrd).properties.spec as Any;
    expect(spec.required).toEqual(["serviceUUID", "secretRef"]);
    expect(spec.properties.manifests).toMatchObject({ type: "array", items: { type: "string" } });
    const applied = (schemaOf(manifestsCrd).properties.status as Any).properties.applied.items;
    expect(applied.properties.state.enum).toEqual(["Applied", "Failed", "Pending"]);
    expect(Object.keys(applied.properties)).toEqual(["index", "apiVersion", "kind", "namespace", "name", "state", "message", "appliedBefore", "refusals"]);
    expect(applied.properties.appliedBefore).toEqual({ type: "boolean" });
    expect(applied.properties.refusals).toEqual({ type: "integer" });
  });

  it("status schemas and printer columns", () => {
    const columns = (crd: Any) => Object.fromEntries(version(crd).additionalPrinterColumns.map((c: Any) => [c.name, c.jsonPath]));
    expect(columns(entanglementCrd)).toEqual({
      Service: ".spec.serviceUUID",
      Direction: ".status.direction",
      Ready: '.status.conditions[?(@.type=="Ready")].status',
      Reason: '.status.conditions[?(@.type=="Ready")].reason',
      Age: ".metadata.creationTimestamp",
    });
    expect(columns(manifestsCrd)).toEqual({
      Service: ".spec.serviceUUID",
      Ready: '.status.conditions[?(@.type=="Ready")].status',
      Applied: ".status.appliedCount",
      Age: ".metadata.creationTimestamp",
    });
    expect(Object.keys((schemaOf(entanglementCrd).properties.status as Any).properties)).toEqual([
      "observedGeneration",
      "phase",
      "direction",
      "readyReplicas",
      "lastError",
      "conditions",
    ]);
    for (const crd of crds) {
      const conditions = (schemaOf(crd).properties.status as Any).properties.conditions;
      expect(conditions["x-kubernetes-list-map-keys"]).toEqual(["type"]);
      expect(Object.keys(conditions.items.properties)).toEqual(["type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"]);
    }
  });
});

describe("setCondition", () => {
  it("keeps lastTransitionTime while the status stays the same", () => {
    const t1 = new Date("2026-01-01T00:00:00Z");
    const t2 = new Date("2026-01-02T00:00:00Z");
    const a = setCondition(undefined, { type: "Ready", status: "False", reason: "X", message: "m" }, t1);
    const b = setCondition(a, { type: "Ready", status: "False", reason: "Y", message: "n" }, t2);
    expect(b[0]).toMatchObject({ reason: "Y", lastTransitionTime: "2026-01-01T00:00:00Z" });
    const c = setCondition(b, { type: "Ready", status: "True", reason: "Z", message: "o" }, t2);
    expect(c).toHaveLength(1);
    expect(c[0].lastTransitionTime).toBe("2026-01-02T00:00:00Z");
  });
});
