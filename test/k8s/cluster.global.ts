// vitest globalSetup for the `k8s` project: a real control plane (etcd + kube-apiserver +
// kube-controller-manager) from hack/cluster.sh, shared by every suite of the run.
//
// Tests read its kubeconfig path with `inject('kubeconfig')` (process.env.KUBECONFIG is set too).
//   ENTANGLE_TEST_CLUSTER=NAME   cluster name (default "test")
//   ENTANGLE_KEEP_CLUSTER=1      leave it running after the run; the next run reuses it (`up` is idempotent)
//
// globalSetup has no timeout in vitest, so a cold build of the binaries (tens of minutes) is fine.
import type { TestProject } from "vitest/node";
import { cluster, clusterUp } from "../helpers/cluster.ts";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    /** helm's path (hack/cluster.sh helm), for the chart tests */
    helm: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const name = process.env.ENTANGLE_TEST_CLUSTER || "test";
  const { KUBECONFIG: kubeconfig } = await clusterUp(name);
  process.env.KUBECONFIG = kubeconfig;
  project.provide("kubeconfig", kubeconfig);
  // built from source on first use (minutes), like the control plane: here, where no timeout applies
  const helm = /^HELM=(.*)$/m.exec(await cluster("helm"))?.[1];
  if (!helm) throw new Error("hack/cluster.sh helm printed no HELM= line");
  project.provide("helm", helm);

  return async () => {
    if (process.env.ENTANGLE_KEEP_CLUSTER === "1") {
      process.stderr.write(`[cluster] keeping cluster ${name}: KUBECONFIG=${kubeconfig}\n`);
      return;
    }
    await cluster("down", name);
  };
}
