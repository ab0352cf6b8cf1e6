// Smoke test of the local control plane from hack/cluster.sh (see cluster.global.ts): the things
// the rest of the project relies on — API access, RBAC, ServiceAccount tokens and the controllers.
import { randomBytes } from "node:crypto";
import { ApiException, AppsV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { until } from "../helpers/k8s.ts";

/** HTTP status of a failed call (ApiException), or 0 when it succeeded. */
async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 0;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

describe("local control plane", () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  const ns = `smoke-${randomBytes(3).toString("hex")}`;

  beforeAll(async () => {
    kc.loadFromFile(inject("kubeconfig"));
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });

  afterAll(async () => {
    // Namespace deletion (by the namespace controller) also cleans up everything created below.
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.deleteClusterRoleBinding({ name: `${ns}-secrets` }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: `${ns}-secrets` }).catch(() => undefined);
  });

  it("serves the API with the default namespace and ServiceAccount", async () => {
    expect(process.env.KUBECONFIG).toBe(inject("kubeconfig"));
    const namespaces = await core.listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toEqual(expect.arrayContaining(["default", "kube-system"]));
    const sa = await core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
    expect(sa.metadata?.name).toBe("default");
  });

  it("round-trips a ConfigMap", async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: "smoke" }, data: { hello: "world" } },
    });
    const cm = await core.readNamespacedConfigMap({ name: "smoke", namespace: ns });
    expect(cm.data).toEqual({ hello: "world" });
    await core.patchNamespacedConfigMap({ name: "smoke", namespace: ns, body: [{ op: "replace", path: "/data/hello", value: "there" }] });
    expect((await core.readNamespacedConfigMap({ name: "smoke", namespace: ns })).data?.hello).toBe("there");
    await core.deleteNamespacedConfigMap({ name: "smoke", namespace: ns });
    expect(await statusOf(core.readNamespacedConfigMap({ name: "smoke", namespace: ns }))).toBe(404);
  });

  it("enforces RBAC on ServiceAccount tokens", async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "reader" } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name: "reader",
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tr.status?.token;
    expect(token).toBeTruthy();

    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    const saKc = new KubeConfig();
    saKc.loadFromOptions({
      clusters: [cluster],
      users: [{ name: "reader", token }],
      contexts: [{ name: "reader", cluster: cluster.name, user: "reader" }],
      currentContext: "reader",
    });
    const asReader = saKc.makeApiClient(CoreV1Api);

    // Authenticated (token accepted) but not authorized.
    expect(await statusOf(asReader.listSecretForAllNamespaces())).toBe(403);

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({
      body: {
        metadata: { name: `${ns}-secrets` },
        rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${ns}-secrets` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${ns}-secrets` },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace: ns }],
      },
    });
    // The RBAC authorizer reads from informers: allow a moment for the binding to land.
    await until("the ClusterRoleBinding to take effect", async () => (await statusOf(asReader.listSecretForAllNamespaces())) === 0, 10_000);
  });

  it("runs the controllers: Deployment -> ReplicaSet -> Pod, and garbage collection", async () => {
    const apps = kc.makeApiClient(AppsV1Api);
    const labels = { app: "smoke" };
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: "smoke" },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            // Never pulled: there is no kubelet, pods stay Pending.
            spec: { containers: [{ name: "c", image: "registry.invalid/none:0" }] },
          },
        },
      },
    });
    const rs = await until("a ReplicaSet", async () => {
      const list = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: "app=smoke" });
      return list.items[0];
    });
    expect(rs.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Deployment", name: "smoke" });
    const pod = await until("a Pod", async () => {
      const list = await core.listNamespacedPod({ namespace: ns, labelSelector: "app=smoke" });
      return list.items[0];
    });
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "ReplicaSet", name: rs.metadata?.name });
    expect(pod.status?.phase).toBe("Pending");

    // ownerReference garbage collection: deleting the Deployment removes its ReplicaSet.
    await apps.deleteNamespacedDeployment({ name: "smoke", namespace: ns });
    await until("the ReplicaSet to be garbage collected", async () => {
      const list = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: "app=smoke" });
      return list.items.length === 0;
    });
  });
});
