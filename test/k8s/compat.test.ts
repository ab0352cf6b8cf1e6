// The original operators' remaining fields against the real API server (issue 14):
// spec.serviceRef, nethost "false", the agents' log level (module setting and pod annotation).
// Manifests' no-finalize and status.executed need a remote cluster: test/e2e/compat-manifests.test.ts.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { getJson, kc, kubectl, moduleDown, moduleUp, until } from "../helpers/k8s.ts";

type Any = Record<string, any>;
const CLUSTER = process.env.ENTANGLE_TEST_CLUSTER || "test";
const NS = "compat";
let kcfg = "";

const ready = (o: Any) => o.status?.conditions?.find((c: Any) => c.type === "Ready");
const entanglement = (name: string, spec: Any) =>
  JSON.stringify({
    apiVersion: "entangle.kairos.io/v1alpha1",
    kind: "Entanglement",
    metadata: { name, namespace: NS },
    spec: { secretRef: "mysecret", ...spec },
  });
const service = (name: string, ports: number[]) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: NS },
    spec: { selector: { app: name }, ports: ports.map((port) => ({ name: `p${port}`, port })) },
  });

async function reasonOf(name: string): Promise<Any | undefined> {
  return ready(await getJson(kcfg, ["entanglement", name, "-n", NS]));
}

async function eventsOf(name: string, reason: string): Promise<Any[]> {
  const e = await getJson(kcfg, ["events", "-n", NS, "--field-selector", `involvedObject.name=${name},reason=${reason}`]);
  return e.items;
}

beforeAll(async () => {
  kcfg = inject("kubeconfig");
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=true", "--timeout=60s"]);
  await moduleDown(CLUSTER); // a module left running would keep its old settings
  await moduleUp(CLUSTER, { ENTANGLE_AGENT_IMAGE: "example.test/entangle:ci", ENTANGLE_AGENT_LOG_LEVEL: "debug" });
  await kc(kcfg, ["create", "namespace", NS]);
  await kc(kcfg, ["create", "secret", "generic", "mysecret", "-n", NS, `--from-literal=network_token=${newToken()}`]);
}, 240_000);

afterAll(async () => {
  await kubectl(kcfg, ["delete", "namespace", NS, "--wait=false"]);
  await moduleDown(CLUSTER);
});

describe("spec.serviceRef", () => {
  it("a missing Service: Ready=False naming it, with an Event; its creation brings the agent targeting <name>.<namespace>.svc.cluster.local", async () => {
    await kc(kcfg, ["apply", "-f", "-"], entanglement("to-web", { serviceUUID: "web", serviceRef: "web" }));
    const missing = await until("ServiceNotFound", async () => {
      const r = await reasonOf("to-web");
      return r?.reason === "ServiceNotFound" && r;
    });
    expect(missing).toMatchObject({ status: "False", message: `spec.serviceRef: Service ${NS}/web not found; waiting for it to be created` });
    const [event] = await until("ServiceNotFound Event", () => eventsOf("to-web", "ServiceNotFound").then((e) => e.length > 0 && e));
    expect(event).toMatchObject({ type: "Warning", message: missing.message });
    expect((await kubectl(kcfg, ["get", "deployment", "entangle-to-web", "-n", NS])).code).not.toBe(0);

    // the Service's watch event reconciles it at once (the periodic recheck would take 30 s)
    const created = Date.now();
    await kc(kcfg, ["apply", "-f", "-"], service("web", [8080]));
    const dep = await until("Deployment entangle-to-web", () => getJson(kcfg, ["deployment", "entangle-to-web", "-n", NS]), 15_000);
    expect(Date.now() - created).toBeLessThan(15_000);
    expect(dep.spec.template.spec.containers[0].args.slice(0, 6)).toEqual([
      "agent",
      "expose",
      "--service",
      "web",
      "--target",
      `web.${NS}.svc.cluster.local:8080`,
    ]);
    await until("AgentNotReady", async () => (await reasonOf("to-web"))?.reason === "AgentNotReady");
  });

  it("a second port makes it ambiguous (Event), spec.port picks one, deleting the Service says so again", async () => {
    await kc(kcfg, ["apply", "-f", "-"], service("web", [8080, 8443]));
    const ambiguous = await until("ServicePortAmbiguous", async () => {
      const r = await reasonOf("to-web");
      return r?.reason === "ServicePortAmbiguous" && r;
    });
    expect(ambiguous.message).toBe(`spec.serviceRef: Service ${NS}/web has 2 ports (8080 (p8080), 8443 (p8443)); set spec.port to the one to use`);
    expect((await until("Event", () => eventsOf("to-web", "ServicePortAmbiguous").then((e) => e.length > 0 && e)))[0].type).toBe("Warning");

    await kc(kcfg, ["apply", "-f", "-"], entanglement("to-web", { serviceUUID: "web", serviceRef: "web", port: "8443" }));
    await until("target on 8443", async () => {
      const dep = await getJson(kcfg, ["deployment", "entangle-to-web", "-n", NS]);
      return dep.spec.template.spec.containers[0].args[5] === `web.${NS}.svc.cluster.local:8443`;
    });
    await until("AgentNotReady", async () => (await reasonOf("to-web"))?.reason === "AgentNotReady");

    await kc(kcfg, ["apply", "-f", "-"], entanglement("to-web", { serviceUUID: "web", serviceRef: "web", port: 9999 }));
    await until("ServicePortNotFound", async () => (await reasonOf("to-web"))?.reason === "ServicePortNotFound");
    await kc(kcfg, ["apply", "-f", "-"], entanglement("to-web", { serviceUUID: "web", serviceRef: "web", port: 8443 }));
    await until("AgentNotReady", async () => (await reasonOf("to-web"))?.reason === "AgentNotReady");

    await kc(kcfg, ["delete", "service", "web", "-n", NS]);
    await until("ServiceNotFound after deletion", async () => (await reasonOf("to-web"))?.reason === "ServiceNotFound");
  });

  it("the API server refuses a spec with neither port nor serviceRef, and serviceRef on an inbound Entanglement", async () => {
    let r = await kubectl(kcfg, ["apply", "-f", "-"], entanglement("bad", { serviceUUID: "x" }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.port is required (it may be left out only with spec.serviceRef)");
    r = await kubectl(kcfg, ["apply", "-f", "-"], entanglement("bad", { serviceUUID: "x", serviceRef: "web", inbound: true, port: 80 }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.serviceRef applies to outbound Entanglements only");
    r = await kubectl(kcfg, ["apply", "-f", "-"], entanglement("bad", { serviceUUID: "x", serviceRef: "web.other" }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.serviceRef");
  });
});

describe("agents' log level and nethost", () => {
  const pod = (name: string, annotations: Record<string, string>) =>
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: NS,
        labels: { "entanglement.kairos.io/name": "mysecret", "entanglement.kairos.io/service": "foo", "entanglement.kairos.io/target_port": "9090" },
        annotations,
      },
      spec: { containers: [{ name: "app", image: "busybox:1.28" }] },
    });
  const levelOf = (c: Any) => c.env.find((e: Any) => e.name === "ENTANGLE_LOG_LEVEL")?.value;

  it("ENTANGLE_AGENT_LOG_LEVEL reaches a rendered Deployment's agent", async () => {
    await kc(kcfg, ["apply", "-f", "-"], entanglement("plain", { serviceUUID: "plain", port: 80 }));
    const dep = await until("Deployment entangle-plain", () => getJson(kcfg, ["deployment", "entangle-plain", "-n", NS]));
    expect(levelOf(dep.spec.template.spec.containers[0])).toBe("debug");
  });

  it('nethost "false" is accepted (pod network), log_level overrides the module level; an unknown level is refused with a warning', async () => {
    await kc(kcfg, ["apply", "-f", "-"], pod("quiet", { "entanglement.kairos.io/nethost": "false", "entanglement.kairos.io/log_level": "warning" }));
    const p = await getJson(kcfg, ["pod", "quiet", "-n", NS]);
    const sidecar = p.spec.initContainers.find((c: Any) => c.name === "entangle-agent");
    expect(p.spec.hostNetwork).toBeUndefined();
    expect(levelOf(sidecar)).toBe("warn");

    await kc(kcfg, ["apply", "-f", "-"], pod("default-level", {}));
    expect(levelOf((await getJson(kcfg, ["pod", "default-level", "-n", NS])).spec.initContainers[0])).toBe("debug");

    const r = await kubectl(kcfg, ["apply", "-f", "-"], pod("loud", { "entanglement.kairos.io/log_level": "loud" }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("entanglement.kairos.io/log_level must be one of trace, debug, info, warn, error, fatal, silent");
    expect((await getJson(kcfg, ["pod", "loud", "-n", NS])).spec.initContainers ?? []).toEqual([]);
  });
});
