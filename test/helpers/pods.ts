// There is no kubelet on a local control plane: to run what a pod would run, take the agent
// container of a rendered Deployment or an injected Pod and turn it into a local command line
// and environment (the token resolved from the Secret its secretKeyRef names). Listen
// addresses a pod would own (0.0.0.0, fixed ports, its libp2p listener) become free ports on
// 127.0.0.1.
import { getJson, until } from "./k8s.ts";

type Any = Record<string, any>;

export interface LocalAgent {
  args: string[];
  env: Record<string, string>;
}

export async function localAgent(kubeconfig: string, namespace: string, container: Any, rewrite: Record<string, string> = {}): Promise<LocalAgent> {
  const env: Record<string, string> = {};
  for (const e of container.env as Any[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const secret = await getJson(kubeconfig, ["secret", name, "-n", namespace]);
      env[e.name] = Buffer.from(secret.data[key], "base64").toString("utf8");
    }
  }
  const args = (container.args as string[]).map((a, i, all) => {
    if (rewrite[a] !== undefined) return rewrite[a];
    return ["--listen", "--health-listen"].includes(all[i - 1]) ? "127.0.0.1:0" : a;
  });
  // the pod's libp2p listener (default 0.0.0.0) too: peers must only ever dial loopback here
  if (!args.includes("--p2p-listen")) args.push("--p2p-listen", "127.0.0.1:0");
  return { args, env };
}

export async function deploymentAgent(
  kubeconfig: string,
  namespace: string,
  name: string,
  rewrite?: Record<string, string>,
): Promise<LocalAgent & { container: Any }> {
  const dep = await until(`Deployment ${name}`, () => getJson(kubeconfig, ["deployment", name, "-n", namespace]));
  const container = dep.spec.template.spec.containers.find((c: Any) => c.name === "entangle-agent");
  return { container, ...(await localAgent(kubeconfig, namespace, container, rewrite)) };
}

/** The injected sidecar of the first pod matching `selector`. */
export async function sidecarAgent(
  kubeconfig: string,
  namespace: string,
  selector: string,
  rewrite?: Record<string, string>,
): Promise<LocalAgent & { container: Any }> {
  const pods = await until(`pod ${selector}`, async () => {
    const p = await getJson(kubeconfig, ["pods", "-n", namespace, "-l", selector]);
    return p.items.length > 0 && p.items;
  });
  const container = (pods[0].spec.initContainers ?? []).find((c: Any) => c.name === "entangle-agent");
  if (!container) throw new Error(`pod ${pods[0].metadata.name} has no entangle-agent sidecar`);
  return { container, ...(await localAgent(kubeconfig, namespace, container, rewrite)) };
}
