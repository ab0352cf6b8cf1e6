// vitest globalSetup for the `k8s` project: a real control plane (etcd + kube-apiserver +
// kube-controller-manager) from hack/cluster.sh, shared by every suite of the run.
//
// Tests read its kubeconfig path with `inject('kubeconfig')` (process.env.KUBECONFIG is set too).
//   ENTANGLE_TEST_CLUSTER=NAME   cluster name (default "test")
//   ENTANGLE_KEEP_CLUSTER=1      leave it running after the run; the next run reuses it (`up` is idempotent)
//
// globalSetup has no timeout in vitest, so a cold build of the binaries (tens of minutes) is fine.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
  }
}

const root = fileURLToPath(new URL("../..", import.meta.url));
const script = "hack/cluster.sh";

/** Runs hack/cluster.sh; its progress (stderr) goes straight to ours, stdout is returned. */
function cluster(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script, ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} ${args.join(" ")} exited with ${code}`))));
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const name = process.env.ENTANGLE_TEST_CLUSTER || "test";
  const out = await cluster("up", name);
  const last = out.trim().split("\n").pop() ?? "";
  const match = /^KUBECONFIG=(.+)$/.exec(last);
  if (!match) throw new Error(`${script} up ${name}: no KUBECONFIG= line in its output:\n${out}`);
  const kubeconfig = match[1];
  process.env.KUBECONFIG = kubeconfig;
  project.provide("kubeconfig", kubeconfig);

  return async () => {
    if (process.env.ENTANGLE_KEEP_CLUSTER === "1") {
      process.stderr.write(`[cluster] keeping cluster ${name}: KUBECONFIG=${kubeconfig}\n`);
      return;
    }
    await cluster("down", name);
  };
}
