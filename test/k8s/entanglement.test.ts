// The module against the real API server: the seed's YAML applied verbatim with kubectl, the
// Entanglement controller's objects and status, and sidecar injection by the webhook.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { newToken } from "../../lib/p2p/token.ts";
import { seedText } from "../helpers/seed.ts";
import { getJson, kc, kubectl, moduleDown, moduleUp, until } from "../helpers/k8s.ts";

type Any = Record<string, any>;
const CLUSTER = process.env.ENTANGLE_TEST_CLUSTER || "test";
const token = newToken();
let kcfg = "";

const ready = (o: Any) => o.status?.conditions?.find((c: Any) => c.type === "Ready");

async function applyYaml(yaml: string): Promise<string> {
  const r = await kubectl(kcfg, ["apply", "-f", "-"], yaml);
  if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  return r.stderr; // warnings
}

beforeAll(async () => {
  kcfg = inject("kubeconfig");
  await moduleDown(CLUSTER); // a module left running would keep its old settings
  await moduleUp(CLUSTER, { ENTANGLE_PEERS: "127.0.0.1:4001", ENTANGLE_AGENT_IMAGE: "example.test/entangle:ci" });
}, 240_000);

afterAll(async () => {
  await kubectl(kcfg, ["delete", "entanglements,pods,deployments,jobs,secrets", "--all", "-n", "default", "--wait=false"]);
  await moduleDown(CLUSTER);
});

describe("Entanglement controller", () => {
  it("the module applied its CRDs (printer columns included)", async () => {
    const crd = await getJson(kcfg, ["crd", "entanglements.entangle.kairos.io"]);
    expect(crd.spec.versions[0].additionalPrinterColumns.map((c: Any) => c.name)).toEqual(["Service", "Direction", "Ready", "Reason", "Age"]);
    await getJson(kcfg, ["crd", "manifests.entangle-proxy.kairos.io"]);
  });

  it("seed outbound example: Deployment running agent expose, token only by reference", async () => {
    await applyYaml(seedText("outbound-entanglement", token));
    const dep = await until("Deployment entangle-test2", () => getJson(kcfg, ["deployment", "entangle-test2", "-n", "default"]));
    const pod = dep.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.containers[0].image).toBe("example.test/entangle:ci");
    expect(pod.containers[0].args).toEqual([
      "agent",
      "expose",
      "--service",
      "foo2",
      "--target",
      "192.168.1.1:80",
      "--health-listen",
      "[$(ENTANGLE_POD_IP)]:8089",
      "--peer",
      "127.0.0.1:4001",
      // the module's ENTANGLE_BOOTSTRAP (vitest's test.env): no test agent ever joins the public DHT
      "--bootstrap",
      "none",
    ]);
    expect(pod.containers[0].env[0].valueFrom.secretKeyRef).toEqual({ name: "mysecret", key: "network_token" });
    expect(JSON.stringify(dep)).not.toContain(token);
    expect(dep.metadata.ownerReferences[0]).toMatchObject({ kind: "Entanglement", name: "test2", controller: true });
    // no kubelet here: the agent never becomes ready, and the status says so
    const cr = await until("status", async () => {
      const o = await getJson(kcfg, ["entanglement", "test2", "-n", "default"]);
      return ready(o)?.reason === "AgentNotReady" && o;
    });
    expect(cr.status).toMatchObject({ observedGeneration: cr.metadata.generation, direction: "outbound" });
    // one Event per change of the Ready reason, however many watch events arrive
    await new Promise((r) => setTimeout(r, 3_000));
    const events = await getJson(kcfg, ["events", "-n", "default", "--field-selector", `involvedObject.uid=${cr.metadata.uid},reason=AgentNotReady`]);
    expect(events.items).toHaveLength(1);
    const table = await kc(kcfg, ["get", "entanglement", "test2", "-n", "default"]);
    expect(table).toMatch(/test2\s+foo2\s+outbound\s+False/);
  });

  it("seed inbound example: agent connect + a Service reaching it", async () => {
    await applyYaml(seedText("inbound-entanglement", token));
    const dep = await until("Deployment entangle-test3", () => getJson(kcfg, ["deployment", "entangle-test3", "-n", "default"]));
    const c = dep.spec.template.spec.containers[0];
    expect(c.args.slice(0, 6)).toEqual(["agent", "connect", "--service", "foo2", "--listen", "0.0.0.0:8080"]);
    const svc = await until("Service test3", () => getJson(kcfg, ["service", "test3", "-n", "default"]));
    expect(svc.spec.type).toBe("ClusterIP");
    expect(svc.spec.ports[0]).toMatchObject({ port: 8080, targetPort: 8080, protocol: "TCP" });
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(dep.spec.template.metadata.labels[k]).toBe(v);
  });

  it("an update rolls the Deployment; deletion removes everything (ownerReferences + GC)", async () => {
    await kc(kcfg, [
      "patch",
      "entanglement",
      "test3",
      "-n",
      "default",
      "--type",
      "merge",
      "-p",
      '{"spec":{"port":"9090","serviceSpec":{"ports":[{"port":9090}]}}}',
    ]);
    await until("new args", async () => {
      const d = await getJson(kcfg, ["deployment", "entangle-test3", "-n", "default"]);
      return d.spec.template.spec.containers[0].args.includes("0.0.0.0:9090");
    });
    const svc = await getJson(kcfg, ["service", "test3", "-n", "default"]);
    expect(svc.spec.ports[0]).toMatchObject({ port: 9090, targetPort: 9090 });
    const cr = await until("observedGeneration", async () => {
      const o = await getJson(kcfg, ["entanglement", "test3", "-n", "default"]);
      return o.status?.observedGeneration === o.metadata.generation && o;
    });
    expect(cr.metadata.generation).toBe(2);

    await kc(kcfg, ["delete", "entanglement", "test3", "-n", "default"]);
    await until(
      "Deployment and Service gone",
      async () => {
        const d = await kubectl(kcfg, ["get", "deployment/entangle-test3", "service/test3", "-n", "default"]);
        return d.code !== 0 && /NotFound/.test(d.stderr) && !/^deployment|^service/m.test(d.stdout);
      },
      60_000,
    );
  });

  it("missing Secret: Ready=False SecretNotFound with an Event, then recovers when it appears", async () => {
    await kc(kcfg, ["create", "namespace", "nosecret"]);
    await applyYaml(`apiVersion: entangle.kairos.io/v1alpha1
kind: Entanglement
metadata: {name: lonely, namespace: nosecret}
spec: {serviceUUID: lonely, secretRef: absent, host: 127.0.0.1, port: 8080}
`);
    const cr = await until("SecretNotFound", async () => {
      const o = await getJson(kcfg, ["entanglement", "lonely", "-n", "nosecret"]);
      return ready(o)?.reason === "SecretNotFound" && o;
    });
    expect(ready(cr).message).toContain("Secret nosecret/absent not found");
    const events = await until("event", async () => {
      const e = await getJson(kcfg, ["events", "-n", "nosecret", "--field-selector", "involvedObject.name=lonely"]);
      return e.items.length > 0 && e.items;
    });
    expect(events.map((e: Any) => e.reason)).toContain("SecretNotFound");
    const described = await kc(kcfg, ["describe", "entanglement", "lonely", "-n", "nosecret"]);
    expect(described).toContain("SecretNotFound");

    await kc(kcfg, ["create", "secret", "generic", "absent", "-n", "nosecret", "--from-literal=wrong_key=x"]);
    await until("SecretKeyMissing", async () => ready(await getJson(kcfg, ["entanglement", "lonely", "-n", "nosecret"]))?.reason === "SecretKeyMissing");
    await kc(kcfg, ["delete", "secret", "absent", "-n", "nosecret"]);
    await kc(kcfg, ["create", "secret", "generic", "absent", "-n", "nosecret", `--from-literal=network_token=${token}`]);
    await until("AgentNotReady", async () => ready(await getJson(kcfg, ["entanglement", "lonely", "-n", "nosecret"]))?.reason === "AgentNotReady");
    await kc(kcfg, ["delete", "namespace", "nosecret", "--wait=false"]);
  });

  it("an agent that exits on bad input: Ready=False AgentFailed naming its reason, with an Event", async () => {
    // no kubelet here: the agent pod's status is written as kubelet would (status subresource)
    const ns = "crashing";
    const name = `agent-that-exits-${"x".repeat(60)}`; // the pod label is a shortened form of it
    const line = "entangle: --service: must be at most 253 characters";
    await kc(kcfg, ["create", "namespace", ns]);
    await kc(kcfg, ["create", "secret", "generic", "tok", "-n", ns, `--from-literal=network_token=${token}`]);
    await applyYaml(`apiVersion: entangle.kairos.io/v1alpha1
kind: Entanglement
metadata: {name: ${name}, namespace: ${ns}}
spec: {serviceUUID: exits, secretRef: tok, host: 127.0.0.1, port: 8080}
`);
    const pod = await until("the agent's pod", async () => {
      const p = await getJson(kcfg, ["pods", "-n", ns, "-l", "app.kubernetes.io/managed-by=entangle"]);
      return p.items[0]?.metadata.name as string | undefined;
    });
    const agentStatus = (state: Any, lastState: Any = {}) =>
      JSON.stringify({
        status: {
          containerStatuses: [{ name: "entangle-agent", image: "example.test/entangle:ci", imageID: "", ready: false, restartCount: 1, state, lastState }],
        },
      });
    const setStatus = (state: Any, lastState?: Any) =>
      kc(kcfg, ["patch", "pod", pod, "-n", ns, "--subresource=status", "--type=merge", "-p", agentStatus(state, lastState)]);
    const reasonIs = async (reason: string) => {
      const o = await getJson(kcfg, ["entanglement", name, "-n", ns]);
      return ready(o)?.reason === reason && o;
    };
    const terminated = { exitCode: 2, reason: "Error", message: `${line}\n`, startedAt: "2026-01-01T00:00:00Z", finishedAt: "2026-01-01T00:00:01Z" };

    await setStatus({ terminated });
    const cr = await until("AgentFailed", () => reasonIs("AgentFailed"));
    expect(ready(cr).message).toBe(`agent exited with code 2: ${line} (pod ${pod})`);
    expect(cr.status).toMatchObject({ phase: "Error", lastError: `agent exited with code 2: ${line}` });
    const events = await until("AgentFailed event", async () => {
      const e = await getJson(kcfg, ["events", "-n", ns, "--field-selector", `involvedObject.uid=${cr.metadata.uid},reason=AgentFailed`]);
      return e.items.length > 0 && e.items;
    });
    expect(events[0]).toMatchObject({ type: "Warning", message: ready(cr).message });

    // waiting to be restarted: the last termination's reason, in the same words
    await setStatus({ waiting: { reason: "CrashLoopBackOff", message: "back-off 10s restarting failed container" } }, { terminated });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(ready(await reasonIs("AgentFailed")).message).toBe(ready(cr).message);
    // running again (not ready yet): the failure is gone from the status
    await setStatus({ running: { startedAt: "2026-01-01T00:00:02Z" } }, { terminated });
    await until("AgentNotReady", () => reasonIs("AgentNotReady"));
    await kc(kcfg, ["delete", "namespace", ns, "--wait=false"]);
  });

  it("never takes over a user's Service or Deployment: NameConflict, object untouched, and kept when the CR goes", async () => {
    await kc(kcfg, ["create", "namespace", "taken"]);
    await kc(kcfg, ["create", "service", "clusterip", "web", "--tcp=80:8080", "-n", "taken"]);
    await kc(kcfg, ["create", "deployment", "entangle-api", "--image=example.test/user:1", "-n", "taken"]);
    const before = await getJson(kcfg, ["service", "web", "-n", "taken"]);
    const entanglement = (name: string) =>
      `apiVersion: entangle.kairos.io/v1alpha1\nkind: Entanglement\nmetadata: {name: ${name}, namespace: taken}\nspec: {serviceUUID: ${name}, secretRef: mysecret, host: 127.0.0.1, port: 9000, inbound: true, serviceSpec: {ports: [{port: 80}]}}\n`;
    await applyYaml(entanglement("web") + "---\n" + entanglement("api"));
    for (const [name, what] of [
      ["web", "Service taken/web"],
      ["api", "Deployment taken/entangle-api"],
    ]) {
      const cr = await until(`${name} NameConflict`, async () => {
        const o = await getJson(kcfg, ["entanglement", name, "-n", "taken"]);
        return ready(o)?.reason === "NameConflict" && o;
      });
      expect(ready(cr)).toMatchObject({ status: "False", message: expect.stringContaining(`${what} already exists`) });
      const events = await until("event", async () => {
        const e = await getJson(kcfg, ["events", "-n", "taken", "--field-selector", `involvedObject.uid=${cr.metadata.uid},reason=NameConflict`]);
        return e.items.length > 0 && e.items;
      });
      expect(events[0].type).toBe("Warning");
    }
    const svc = await getJson(kcfg, ["service", "web", "-n", "taken"]);
    expect(svc.spec.selector).toEqual(before.spec.selector);
    expect(svc.spec.ports).toEqual(before.spec.ports);
    expect(svc.metadata.ownerReferences).toBeUndefined();
    expect(svc.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    const dep = await getJson(kcfg, ["deployment", "entangle-api", "-n", "taken"]);
    expect(dep.spec.template.spec.containers[0].image).toBe("example.test/user:1");
    expect(dep.metadata.ownerReferences).toBeUndefined();
    // the web CR made no Deployment of its own either: nothing half-applied
    expect((await kubectl(kcfg, ["get", "deployment", "entangle-web", "-n", "taken"])).code).not.toBe(0);

    await kc(kcfg, ["delete", "entanglement", "web", "api", "-n", "taken", "--wait=true"]);
    await new Promise((r) => setTimeout(r, 3_000)); // the garbage collector's turn
    expect((await getJson(kcfg, ["service", "web", "-n", "taken"])).metadata.uid).toBe(before.metadata.uid);
    expect((await getJson(kcfg, ["deployment", "entangle-api", "-n", "taken"])).metadata.uid).toBe(dep.metadata.uid);
    await kc(kcfg, ["delete", "namespace", "taken", "--wait=false"]);
  });

  it("invalid specs are refused by the API server with a clear message", async () => {
    const bad = (spec: string) => `apiVersion: entangle.kairos.io/v1alpha1\nkind: Entanglement\nmetadata: {name: bad, namespace: default}\nspec: ${spec}\n`;
    let r = await kubectl(kcfg, ["apply", "-f", "-"], bad('{serviceUUID: x, secretRef: s, port: "http"}'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("port must be a number from 1 to 65535");
    r = await kubectl(kcfg, ["apply", "-f", "-"], bad("{serviceUUID: x, secretRef: s, port: 70000}"));
    expect(r.stderr).toContain("port must be a number from 1 to 65535");
    r = await kubectl(kcfg, ["apply", "-f", "-"], bad("{secretRef: s, port: 80}"));
    expect(r.stderr).toMatch(/spec.serviceUUID: Required value/);
  });

  it("a module killed mid-reconcile: after its restart exactly one Deployment per Entanglement, and edits made while it was down are applied", async () => {
    const MODULE_ENV = { ENTANGLE_PEERS: "127.0.0.1:4001", ENTANGLE_AGENT_IMAGE: "example.test/entangle:ci" };
    const many = (port: number) =>
      Array.from(
        { length: 8 },
        (_, i) =>
          `apiVersion: entangle.kairos.io/v1alpha1\nkind: Entanglement\nmetadata: {name: many-${i}, namespace: default}\nspec: {serviceUUID: many-${i}, secretRef: mysecret, host: 127.0.0.1, port: ${port + i}}\n`,
      ).join("---\n");
    const mine = async () =>
      (await getJson(kcfg, ["deployments", "-n", "default", "-l", "app.kubernetes.io/managed-by=entangle"])).items.filter((x: Any) =>
        x.metadata.name.startsWith("entangle-many-"),
      );
    await moduleDown(CLUSTER);
    await applyYaml(many(8000));
    await moduleUp(CLUSTER, MODULE_ENV);
    // killed as soon as it has made one: some Deployments exist with the old spec, others not yet
    await until("a first Deployment", async () => (await mine()).length > 0, 60_000);
    await moduleDown(CLUSTER);
    const atKill = (await mine()).length;
    await applyYaml(many(9000)); // every CR edited while no module runs (generation 2)
    await moduleUp(CLUSTER, MODULE_ENV);

    const crs = await until(
      "every Entanglement reconciled at generation 2",
      async () => {
        const items = (await getJson(kcfg, ["entanglements", "-n", "default"])).items.filter((x: Any) => x.metadata.name.startsWith("many-"));
        return items.length === 8 && items.every((x: Any) => x.metadata.generation === 2 && x.status?.observedGeneration === 2) && items;
      },
      90_000,
    );
    const deps = await mine();
    expect(
      deps.map((d: Any) => d.metadata.name),
      `${atKill} of 8 Deployments existed when the module was killed`,
    ).toEqual(expect.arrayContaining(Array.from({ length: 8 }, (_, i) => `entangle-many-${i}`)));
    expect(deps).toHaveLength(8);
    for (const cr of crs) {
      const i = Number(cr.metadata.name.slice("many-".length));
      const dep = deps.find((d: Any) => d.metadata.name === `entangle-many-${i}`);
      expect(dep.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: "Entanglement", uid: cr.metadata.uid, controller: true })]);
      // the edit made while the module was down reached every Deployment, old or new
      expect(dep.spec.template.spec.containers[0].args.slice(0, 6)).toEqual(["agent", "expose", "--service", `many-${i}`, "--target", `127.0.0.1:${9000 + i}`]);
    }
    await kc(kcfg, ["delete", "entanglements", ...Array.from({ length: 8 }, (_, i) => `many-${i}`), "-n", "default"]);
  }, 240_000); // two module starts and a stop (50 s measured)
});

describe("sidecar injection", () => {
  const sidecarOf = (pod: Any) => (pod.spec.initContainers ?? []).filter((c: Any) => c.name === "entangle-agent");

  it("seed bare Pod: a native sidecar connecting foo on 127.0.0.1:9090", async () => {
    await applyYaml(seedText("sidecar-pod", token));
    const pod = await getJson(kcfg, ["pod", "hello", "-n", "default"]);
    const [agent] = sidecarOf(pod);
    expect(agent.restartPolicy).toBe("Always");
    expect(agent.args.slice(0, 6)).toEqual(["agent", "connect", "--service", "foo", "--listen", "127.0.0.1:9090"]);
    expect(agent.env[0].valueFrom.secretKeyRef).toEqual({ name: "mysecret", key: "network_token" });
    expect(pod.spec.hostNetwork).toBeUndefined();
    expect(pod.metadata.annotations["entanglement.kairos.io/injected"]).toBe("connect foo");
  });

  it("seed Deployment's pods (generateName only at admission) get exactly one expose sidecar", async () => {
    await applyYaml(seedText("sidecar-deployment-cluster-a", token));
    const pods = await until("a pod from the ReplicaSet", async () => {
      const p = await getJson(kcfg, ["pods", "-n", "default", "-l", "app=entangle-proxy"]);
      return p.items.length > 0 && p.items;
    });
    const [agent, ...more] = sidecarOf(pods[0]);
    expect(more).toHaveLength(0);
    expect(agent.args.slice(0, 6)).toEqual(["agent", "expose", "--service", "foo", "--target", "127.0.0.1:8001"]);
  });

  it("a Job's pod gets the sidecar as a native sidecar (the Job can complete)", async () => {
    await applyYaml(`apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: default}
spec:
  template:
    metadata:
      labels: {entanglement.kairos.io/name: mysecret, entanglement.kairos.io/service: foo, entanglement.kairos.io/target_port: "9090"}
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox:1.28, command: ["true"]}]
`);
    const pods = await until("the Job's pod", async () => {
      const p = await getJson(kcfg, ["pods", "-n", "default", "-l", "job-name=once"]);
      return p.items.length > 0 && p.items;
    });
    expect(sidecarOf(pods[0])[0].restartPolicy).toBe("Always");
    expect(pods[0].spec.containers.map((c: Any) => c.name)).toEqual(["main"]);
  });

  it("never injects twice", async () => {
    const pod = await getJson(kcfg, ["pod", "hello", "-n", "default"]);
    delete pod.metadata.resourceVersion;
    delete pod.metadata.uid;
    delete pod.metadata.creationTimestamp;
    delete pod.status;
    pod.metadata.name = "hello-again";
    const r = await kubectl(kcfg, ["create", "-f", "-"], JSON.stringify(pod));
    expect(r.code, r.stderr).toBe(0);
    expect(sidecarOf(await getJson(kcfg, ["pod", "hello-again", "-n", "default"]))).toHaveLength(1);
  });

  it("incomplete labels: pod untouched, with a warning", async () => {
    const warnings = await applyYaml(`apiVersion: v1
kind: Pod
metadata: {name: half, namespace: default, labels: {entanglement.kairos.io/name: mysecret}}
spec: {containers: [{name: c, image: busybox:1.28}]}
`);
    expect(warnings).toContain("missing entanglement.kairos.io/service, entanglement.kairos.io/target_port");
    const pod = await getJson(kcfg, ["pod", "half", "-n", "default"]);
    expect(pod.spec.initContainers).toBeUndefined();
  });

  it("missing Secret: admitted with a warning naming it", async () => {
    const warnings = await applyYaml(`apiVersion: v1
kind: Pod
metadata: {name: nosecret, namespace: default, labels: {entanglement.kairos.io/name: nope, entanglement.kairos.io/service: foo, entanglement.kairos.io/target_port: "9090"}}
spec: {containers: [{name: c, image: busybox:1.28}]}
`);
    expect(warnings).toContain("Secret default/nope not found");
    expect(sidecarOf(await getJson(kcfg, ["pod", "nosecret", "-n", "default"]))).toHaveLength(1);
  });
});
