// Packaging: `npm run build` (pepr build + hack/package.sh) produces a module whose RBAC is scoped
// to exactly what the code calls, ships our CRDs, and installs against a real API server.
//
// No kubelet here, so the install stops at `kubectl apply --dry-run=server` (every object is
// validated and admitted, nothing persists). The RBAC objects are the exception: they are inert,
// so they are applied for real and checked with SubjectAccessReviews for the module's
// ServiceAccount (then deleted).
// Webhook configurations are never created for real: they would point at a Service with no pods,
// and failurePolicy Fail on Pod CREATE would break every other suite sharing this cluster.
// (`pepr deploy` is no option here either: it would create them, then wait forever for the
// Deployments to become ready.)
//
// Also here: the module YAML as hack/deploy.sh edits it (caller's env on both Deployments), and
// patches/pepr+1.1.4.patch's capability loader, which makes a module that fails to load fail
// `pepr deploy` (unpatched, the command ended with exit 0 having deployed nothing).
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseAssignments, withEnv } from "../../hack/deploy/env.ts";
import { DEFAULT_AGENT_IMAGE } from "../../lib/config.ts";
import { ROOT, kc, kubectl, run, until } from "../helpers/k8s.ts";

const DIST = join(ROOT, "dist");
const MODULE_YAML = join(DIST, "pepr-module-entangle.yaml");
const CRDS_YAML = join(DIST, "entangle-crds.yaml");
const NAME = "pepr-entangle";
const SA = `system:serviceaccount:pepr-system:${NAME}`;

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}
interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
  spec?: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
}

// What lib/ and Pepr call, per "group/resource" (see the pepr.rbac list in package.json):
const EXPECTED_RULES: Record<string, string[]> = {
  "entangle.kairos.io/entanglements": ["get", "list", "watch"], // Reconcile (list+watch), Get
  "entangle.kairos.io/entanglements/status": ["patch"], // PatchStatus
  "entangle.kairos.io/entanglements/finalizers": ["update"], // blockOwnerDeletion, where OwnerReferencesPermissionEnforcement is on
  "entangle-proxy.kairos.io/manifests": ["get", "list", "patch", "watch"], // Reconcile, resync, finalizer removal
  "entangle-proxy.kairos.io/manifests/status": ["patch"],
  "apps/deployments": ["create", "get", "list", "patch", "watch"], // server-side apply (create+patch), Get, Watch
  "/services": ["create", "delete", "get", "list", "patch", "watch"], // apply; delete the stale one of an outbound CR; Watch (spec.serviceRef)
  "/secrets": ["get", "list", "watch"], // token checks, Watch
  "/pods": ["list", "watch"], // why an agent exits (container status), Watch of the agent pods
  "/events": ["create"],
  "apiextensions.k8s.io/customresourcedefinitions": ["create", "get", "patch"], // ours + Pepr's store CRD, by name
  "pepr.dev/peprstores": ["create", "get", "list", "patch", "watch"], // Pepr's store
  "admissionregistration.k8s.io/validatingadmissionpolicies": ["create", "get", "patch"], // the sidecar guard, by name
  "admissionregistration.k8s.io/validatingadmissionpolicybindings": ["create", "get", "patch"],
};
const CRD_NAMES = ["entanglements.entangle.kairos.io", "manifests.entangle-proxy.kairos.io", "peprstores.pepr.dev"];

function loadDocs(file: string): Doc[] {
  return (yaml.loadAll(readFileSync(file, "utf8")) as (Doc | null)[]).filter((d): d is Doc => !!d);
}

function find(docs: Doc[], kind: string, name: string): Doc {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!doc) throw new Error(`${kind} ${name} not in the module YAML`);
  return doc;
}

/** "group/resource" -> sorted verbs, one entry per (group, resource). */
function ruleTable(rules: Rule[]): Record<string, string[]> {
  const table: Record<string, string[]> = {};
  for (const r of rules) for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) table[`${g}/${res}`] = [...r.verbs].sort();
  return table;
}

type Attr = { verb: string; group: string; resource: string; subresource?: string; name?: string; namespace?: string };

function attrs(group: string, resource: string, verbs: string[], extra: Partial<Attr> = {}): Attr[] {
  return verbs.map((verb) => ({ verb, group, resource, ...extra }));
}

/** One SubjectAccessReview per attribute set for the module's ServiceAccount, in one kubectl call. */
async function review(kubeconfig: string, list: Attr[]): Promise<{ what: string; allowed: boolean }[]> {
  const groups = ["system:serviceaccounts", "system:serviceaccounts:pepr-system", "system:authenticated"];
  const input = list
    .map((resourceAttributes) =>
      yaml.dump({ apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user: SA, groups, resourceAttributes } }),
    )
    .join("---\n");
  // kubectl creates (and prints) them in input order
  const out = await kc(kubeconfig, ["create", "-f", "-", "-o", 'jsonpath={.status.allowed}{"\\n"}'], input);
  const answers = out.trim().split("\n");
  expect(answers).toHaveLength(list.length);
  return list.map((a, i) => ({
    what: `${a.verb} ${a.group || "core"}/${a.resource}${a.subresource ? "/" + a.subresource : ""}${a.name ? " " + a.name : ""}${a.namespace ? " -n " + a.namespace : ""}`,
    allowed: answers[i] === "true",
  }));
}

describe("packaging: npm run build", () => {
  const kubeconfig = inject("kubeconfig");
  let docs: Doc[];
  let rbacApplied = false;

  beforeAll(async () => {
    const r = await run("npm", ["run", "build"], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`npm run build failed (${r.code}):\n${r.stderr.slice(-4000)}`);
    docs = loadDocs(MODULE_YAML);
  }, 200_000);

  afterAll(async () => {
    if (!rbacApplied) return;
    await kubectl(kubeconfig, ["delete", "--ignore-not-found", "--wait=false", `clusterrolebinding/${NAME}`, `clusterrole/${NAME}`]);
  });

  it("renders a scoped ClusterRole: exactly the rules the module uses, no wildcards", () => {
    const rules = find(docs, "ClusterRole", NAME).rules!;
    for (const r of rules) {
      for (const v of [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs]) expect(v).not.toContain("*");
    }
    expect(ruleTable(rules)).toEqual(EXPECTED_RULES);
    const crdRule = rules.find((r) => r.resources?.includes("customresourcedefinitions"));
    expect(crdRule?.resourceNames?.sort()).toEqual(CRD_NAMES);
  });

  it("gives the Helm chart the same rules", () => {
    const values = yaml.load(readFileSync(join(DIST, "entangle-chart/values.yaml"), "utf8")) as { rbac: Rule[] };
    expect(ruleTable(values.rbac)).toEqual(EXPECTED_RULES);
  });

  it("passes the agent image to the watcher and admission Deployments", () => {
    for (const name of [NAME, `${NAME}-watcher`]) {
      const env = find(docs, "Deployment", name).spec!.template.spec.containers[0].env ?? [];
      expect(env).toContainEqual({ name: "ENTANGLE_AGENT_IMAGE", value: DEFAULT_AGENT_IMAGE });
    }
  });

  it("ships the CRDs in dist/ and in the chart's crds/", () => {
    const source = readFileSync(join(ROOT, "lib/crds/crds.yaml"), "utf8");
    expect(readFileSync(CRDS_YAML, "utf8")).toBe(source);
    expect(readFileSync(join(DIST, "entangle-chart/crds/crds.yaml"), "utf8")).toBe(source);
    expect(
      loadDocs(CRDS_YAML)
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(CRD_NAMES.slice(0, 2));
  });

  it("installs against the API server (server-side dry run)", async () => {
    await kc(kubeconfig, ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", CRDS_YAML]);
    // Namespaced objects need their namespace to exist even in a dry run. hack/module.sh creates
    // the same one; it is left in place (deleting it could race a module started by a later suite).
    await kc(
      kubeconfig,
      ["apply", "--server-side", "--force-conflicts", "--field-manager=entangle-test", "-f", "-"],
      yaml.dump(find(docs, "Namespace", "pepr-system")),
    );
    // --server-side: the module Secret (the gzipped code) is too big for client-side apply's
    // last-applied-configuration annotation (256 KiB), so users must install this way too.
    const out = await kc(kubeconfig, ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", MODULE_YAML]);
    // one line per object: "<kind>[.<group>]/<name> serverside-applied (server dry run)"
    for (const d of docs)
      expect(out).toMatch(new RegExp(`^${d.kind.toLowerCase()}(\\.[a-z0-9.]+)?/${d.metadata.name} serverside-applied \\(server dry run\\)$`, "m"));
  });

  it("lets the module's ServiceAccount do what it needs, and nothing else", async () => {
    const rbac = docs.filter((d) => (d.kind === "ClusterRole" || d.kind === "ClusterRoleBinding") && d.metadata.name === NAME);
    rbacApplied = true;
    await kc(
      kubeconfig,
      ["apply", "--server-side", "--force-conflicts", "--field-manager=entangle-test", "-f", "-"],
      rbac.map((d) => yaml.dump(d)).join("---\n"),
    );

    // SubjectAccessReviews with explicit attributes (`kubectl auth can-i` guesses them from
    // discovery, and answers "no" for resources whose CRD is not installed yet).
    const ns = (namespace: string) => ({ namespace });
    const allowed: Attr[] = [
      ...attrs("entangle.kairos.io", "entanglements", ["get", "list", "watch"]),
      ...attrs("entangle.kairos.io", "entanglements", ["patch"], { subresource: "status", ...ns("default") }),
      ...attrs("entangle.kairos.io", "entanglements", ["update"], { subresource: "finalizers", ...ns("default") }),
      ...attrs("entangle-proxy.kairos.io", "manifests", ["get", "list", "watch", "patch"]),
      ...attrs("entangle-proxy.kairos.io", "manifests", ["patch"], { subresource: "status", ...ns("default") }),
      ...attrs("apps", "deployments", ["get", "list", "watch", "create", "patch"], ns("default")),
      ...attrs("", "services", ["get", "list", "watch", "create", "patch", "delete"], ns("default")),
      ...attrs("", "secrets", ["get", "list", "watch"], ns("default")),
      ...attrs("", "pods", ["list", "watch"], ns("default")),
      ...attrs("", "events", ["create"], ns("default")),
      ...CRD_NAMES.flatMap((name) => attrs("apiextensions.k8s.io", "customresourcedefinitions", ["get", "create", "patch"], { name })),
      ...attrs("pepr.dev", "peprstores", ["get", "list", "watch", "create", "patch"], ns("pepr-system")),
      ...attrs("admissionregistration.k8s.io", "validatingadmissionpolicies", ["get", "create", "patch"], { name: "entangle-sidecar-guard" }),
      ...attrs("admissionregistration.k8s.io", "validatingadmissionpolicybindings", ["get", "create", "patch"], { name: "entangle-sidecar-guard" }),
    ];
    const denied: Attr[] = [
      ...attrs("", "pods", ["get", "create", "patch", "delete"], ns("default")),
      ...attrs("", "pods", ["update"], { subresource: "status", ...ns("default") }),
      ...attrs("", "configmaps", ["list"], ns("default")),
      ...attrs("", "secrets", ["create", "patch", "delete"], ns("default")),
      ...attrs("apps", "deployments", ["update", "delete"], ns("default")),
      ...attrs("entangle.kairos.io", "entanglements", ["create", "update", "delete"], ns("default")),
      ...attrs("apiextensions.k8s.io", "customresourcedefinitions", ["create", "patch"], { name: "widgets.example.com" }),
      ...attrs("apiextensions.k8s.io", "customresourcedefinitions", ["delete"], { name: CRD_NAMES[0] }),
      ...attrs("apiextensions.k8s.io", "customresourcedefinitions", ["list"]),
      ...attrs("rbac.authorization.k8s.io", "clusterroles", ["create", "escalate"]),
      ...attrs("admissionregistration.k8s.io", "mutatingwebhookconfigurations", ["create"]),
      ...attrs("admissionregistration.k8s.io", "validatingadmissionpolicies", ["create", "patch"], { name: "someone-elses" }),
      ...attrs("admissionregistration.k8s.io", "validatingadmissionpolicies", ["delete", "list"]),
    ];
    // the RBAC authorizer sees new bindings through an informer: wait for ours
    await until("the ClusterRoleBinding to take effect", async () => (await review(kubeconfig, allowed.slice(0, 1)))[0].allowed, 10_000);
    const answers = await review(kubeconfig, [...allowed, ...denied]);
    const wrong = answers.filter((a, i) => a.allowed !== i < allowed.length).map((a) => `${a.allowed ? "allowed" : "denied"}: ${a.what}`);
    expect(wrong).toEqual([]);

    // resourceNames on create works for server-side apply (the name is in the URL): the module
    // applies its CRDs this way at start, whether or not they exist yet.
    await kc(kubeconfig, ["apply", "--server-side", "--force-conflicts", "--field-manager=pepr", "--dry-run=server", `--as=${SA}`, "-f", CRDS_YAML]);
  });

  // The chart with the real helm (hack/cluster.sh helm): lint, and what it renders compared with
  // the flat YAML. test/helm/ installs it on a real node.
  describe("the Helm chart (dist/entangle-chart, hack/chart.ts)", () => {
    const helmBin = inject("helm");
    const CHART = join(DIST, "entangle-chart");
    const helm = (args: string[]) => run(helmBin, args, { timeoutMs: 60_000 });
    async function template(...args: string[]): Promise<Doc[]> {
      const r = await helm(["template", "entangle", CHART, ...args]);
      if (r.code !== 0) throw new Error(`helm template ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
      return (yaml.loadAll(r.stdout) as (Doc | null)[]).filter((d): d is Doc => !!d);
    }
    type Any = Record<string, any>;
    const key = (d: Doc) => `${d.kind}/${d.metadata.namespace ?? ""}/${d.metadata.name}`;
    /** Without what means nothing: empty lists and maps (`nodeSelector: {}`), env order. */
    function normal(value: unknown): unknown {
      if (Array.isArray(value)) {
        const items = value.map(normal);
        const isEnv = items.every((e) => typeof e === "object" && e !== null && "name" in e && ("value" in e || "valueFrom" in e));
        return isEnv && items.length > 0 ? items.sort((x, y) => String((x as Any).name).localeCompare(String((y as Any).name))) : items;
      }
      if (typeof value !== "object" || value === null) return value;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const n = normal(v);
        if ((Array.isArray(n) && n.length === 0) || (typeof n === "object" && n !== null && !Array.isArray(n) && Object.keys(n).length === 0)) continue;
        out[k] = n;
      }
      return out;
    }
    const deployment = (rendered: Doc[], name: string): Any => find(rendered, "Deployment", name) as unknown as Any;
    const envMap = (d: Any) => Object.fromEntries((d.spec.template.spec.containers[0].env ?? []).map((e: Any) => [e.name, e.value]));

    it("passes helm lint --strict", async () => {
      const r = await helm(["lint", "--strict", CHART]);
      expect(r.stdout + r.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      expect(r.code).toBe(0);
    });

    it("renders, with default values, exactly the objects of the flat YAML: kinds, names, RBAC, webhooks, Deployments", async () => {
      const rendered = await template();
      expect(rendered.map(key).sort()).toEqual(docs.map(key).sort());
      const flat = new Map(docs.map((d) => [key(d), d]));
      for (const d of rendered) expect(normal(d), key(d)).toEqual(normal(flat.get(key(d))));
      // spelled out, the parts that matter most
      expect(ruleTable(find(rendered, "ClusterRole", NAME).rules!)).toEqual(EXPECTED_RULES);
      for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
        const hooks = (find(rendered, kind, NAME) as Any).webhooks;
        expect(hooks.map((h: Any) => [h.rules, h.failurePolicy, h.clientConfig.service.path])).toEqual(
          (find(docs, kind, NAME) as Any).webhooks.map((h: Any) => [h.rules, h.failurePolicy, h.clientConfig.service.path]),
        );
      }
    });

    it("turns the values users set into both Deployments' settings", async () => {
      const rendered = await template(
        ...["--set-json", 'peers=["10.0.0.1:4001","/ip4/10.0.0.2/tcp/4001"]'],
        ...["--set-json", 'bootstrap=["/ip4/10.0.0.3/tcp/4001/p2p/12D3KooWPZvRXtN3xEjJRm9GuoPBPtSDrAN5vs2HWfmBeiiGhAGt"]'],
        ...["--set", "agent.image.repository=registry.example:5000/entangle,agent.image.tag=1.2.3,agent.image.pullPolicy=Always"],
        ...["--set", "agent.logLevel=debug,logLevel=warn,moduleImage=registry.example:5000/pepr/controller:v9"],
        ...["--set", "admission.nodeSelector.disk=ssd,watcher.nodeSelector.disk=ssd"],
        ...["--set-json", 'admission.tolerations=[{"key":"k","operator":"Exists"}]'],
        // null drops a default (helm merges maps): Pepr's schema required both limits
        ...["--set", "watcher.resources.requests.cpu=50m,watcher.resources.limits=null"],
      );
      for (const name of [NAME, `${NAME}-watcher`]) {
        const d = deployment(rendered, name);
        expect(envMap(d)).toMatchObject({
          ENTANGLE_PEERS: "10.0.0.1:4001,/ip4/10.0.0.2/tcp/4001",
          ENTANGLE_BOOTSTRAP: "/ip4/10.0.0.3/tcp/4001/p2p/12D3KooWPZvRXtN3xEjJRm9GuoPBPtSDrAN5vs2HWfmBeiiGhAGt",
          ENTANGLE_AGENT_IMAGE: "registry.example:5000/entangle:1.2.3",
          ENTANGLE_AGENT_PULL_POLICY: "Always",
          ENTANGLE_AGENT_LOG_LEVEL: "debug",
          LOG_LEVEL: "warn",
          PEPR_PRETTY_LOG: "false",
        });
        const names = d.spec.template.spec.containers[0].env.map((e: Any) => e.name);
        expect(new Set(names).size).toBe(names.length); // no variable twice
        expect(d.spec.template.spec.containers[0].image).toBe("registry.example:5000/pepr/controller:v9");
        expect(d.spec.template.spec.nodeSelector).toEqual({ disk: "ssd" });
      }
      expect(deployment(rendered, NAME).spec.template.spec.tolerations).toEqual([{ key: "k", operator: "Exists" }]);
      expect(deployment(rendered, `${NAME}-watcher`).spec.template.spec.containers[0].resources).toEqual({ requests: { cpu: "50m", memory: "256Mi" } });
      // defaults: nothing unset is rendered
      const env = envMap(deployment(await template(), NAME));
      for (const unset of ["ENTANGLE_PEERS", "ENTANGLE_BOOTSTRAP", "ENTANGLE_AGENT_PULL_POLICY", "ENTANGLE_AGENT_LOG_LEVEL"])
        expect(env).not.toHaveProperty(unset);
    });

    it("refuses values its schema does not know", async () => {
      for (const bad of [
        ["--set", "logLevel=loud"],
        ["--set", "agent.image.pullPolicy=Sometimes"],
        ["--set", "peer=10.0.0.1:4001"],
      ]) {
        const r = await helm(["template", "entangle", CHART, ...bad]);
        expect(r.code, bad.join(" ")).not.toBe(0);
        expect(r.stderr).toMatch(/schema/);
      }
    });
  });
});

describe("hack/deploy.sh's module settings (hack/deploy/env.ts)", () => {
  const kubeconfig = inject("kubeconfig");
  const envOf = (docs: Doc[], name: string) => find(docs, "Deployment", name).spec!.template.spec.containers[0].env ?? [];

  it("sets the caller's ENTANGLE_PEERS and agent image on both Deployments, replacing the build's value", () => {
    const docs = loadDocs(MODULE_YAML);
    const pairs = parseAssignments(["ENTANGLE_PEERS=10.0.0.1:4001,/ip4/10.0.0.2/tcp/4001", "ENTANGLE_AGENT_IMAGE=example.org/agent:1"]);
    const out = withEnv(docs, pairs);
    for (const name of [NAME, `${NAME}-watcher`]) {
      const env = envOf(out, name);
      expect(env).toContainEqual({ name: "ENTANGLE_PEERS", value: "10.0.0.1:4001,/ip4/10.0.0.2/tcp/4001" });
      expect(env.filter((e) => e.name === "ENTANGLE_AGENT_IMAGE")).toEqual([{ name: "ENTANGLE_AGENT_IMAGE", value: "example.org/agent:1" }]);
      expect(env).toContainEqual({ name: "LOG_LEVEL", value: "info" }); // the build's other settings stay
    }
    // everything else untouched, and the input not modified
    expect(out.filter((d) => d.kind !== "Deployment")).toEqual(docs.filter((d) => d.kind !== "Deployment"));
    expect(envOf(docs, NAME)).not.toContainEqual(expect.objectContaining({ name: "ENTANGLE_PEERS" }));
  });

  it("refuses malformed assignments", () => {
    expect(() => parseAssignments(["ENTANGLE_PEERS"])).toThrow(/not NAME=VALUE/);
    expect(() => parseAssignments(["1X=y"])).toThrow(/not NAME=VALUE/);
    expect(parseAssignments(["A=b=c", "B="])).toEqual([
      ["A", "b=c"],
      ["B", ""],
    ]);
  });

  it("writes YAML the API server accepts, module code unchanged", async () => {
    const r = await run("node_modules/.bin/node", ["hack/deploy/env.ts", "ENTANGLE_PEERS=10.0.0.1:4001"], { input: readFileSync(MODULE_YAML, "utf8") });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = (yaml.loadAll(r.stdout) as Doc[]).filter(Boolean);
    const secret = (d: Doc[]) => find(d, "Secret", `${NAME}-module`);
    expect(secret(out)).toEqual(secret(loadDocs(MODULE_YAML)));
    const applied = await kc(kubeconfig, ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-"], r.stdout);
    expect(applied).toMatch(/^deployment\.apps\/pepr-entangle-watcher serverside-applied \(server dry run\)$/m);
    expect(applied).toMatch(/^deployment\.apps\/pepr-entangle serverside-applied \(server dry run\)$/m);
  });
});

describe("pepr deploy with patches/pepr+1.1.4.patch", () => {
  // A module whose entry point throws. The API server is never reached (the loader runs before
  // any API call); the kubeconfig points at a closed port in case it were.
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "entangle-broken-module-"));
    const pkg = { name: "broken", version: "0.0.0", type: "module", pepr: { uuid: "broken", onError: "reject", alwaysIgnore: { namespaces: [] }, env: {} } };
    writeFileSync(join(dir, "package.json"), JSON.stringify(pkg));
    const compilerOptions = { module: "nodenext", moduleResolution: "nodenext", noEmit: true, strict: true, skipLibCheck: true, types: ["node"] };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, include: ["pepr.ts"] }));
    writeFileSync(join(dir, "pepr.ts"), 'throw new Error("this module fails to load on purpose");\n');
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
    const kubeconfig = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "closed", cluster: { server: "https://127.0.0.1:1" } }],
      contexts: [{ name: "closed", context: { cluster: "closed", user: "nobody" } }],
      users: [{ name: "nobody", user: { token: "none" } }],
      "current-context": "closed",
    };
    writeFileSync(join(dir, "kubeconfig"), yaml.dump(kubeconfig));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("exits 1 naming the module when the module fails to load", async () => {
    const r = await run("bash", ["-c", 'cd "$0" && exec npx pepr deploy --yes', dir], {
      env: { KUBECONFIG: join(dir, "kubeconfig") },
      timeoutMs: 120_000,
    });
    const out = r.stdout + r.stderr;
    expect(out).toContain("this module fails to load on purpose");
    // the .cjs name: the patch builds an ES-module package's bundle the way `pepr build` does
    expect(out).toMatch(/dist\/pepr-broken\.cjs exited \(code 1, signal null\) before reporting its capabilities/);
    expect(r.code).toBe(1);
  }, 130_000);
});
