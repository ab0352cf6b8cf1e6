// hack/cluster.sh from tests: its progress (stderr) goes straight to ours, its stdout carries
// KEY=value lines, the last one KUBECONFIG=<path>.
import { spawn } from "node:child_process";
import { ROOT } from "./k8s.ts";

const script = "hack/cluster.sh";

export function cluster(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} ${args.join(" ")} exited with ${code}`))));
  });
}

/** `up` and its KEY=value lines; KUBECONFIG is required. */
export async function clusterUp(name: string, ...flags: string[]): Promise<Record<string, string>> {
  const out = await cluster("up", name, ...flags);
  const values: Record<string, string> = {};
  for (const line of out.trim().split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) values[m[1]] = m[2];
  }
  if (!values.KUBECONFIG) throw new Error(`${script} up ${name}: no KUBECONFIG= line in its output:\n${out}`);
  return values;
}
