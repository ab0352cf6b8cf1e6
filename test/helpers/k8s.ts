// Helpers for suites that run against the real API server of hack/cluster.sh: kubectl (the
// one the script built), the module via hack/module.sh, and polling.
import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const KUBECTL = join(process.env.ENTANGLE_CACHE_DIR ?? join(homedir(), ".cache/entangle"), "bin/kubectl");

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

export function kubectl(kubeconfig: string, args: string[], input?: string): Promise<Run> {
  return run(KUBECTL, ["--kubeconfig", kubeconfig, ...args], { input, timeoutMs: 60_000 });
}

/** kubectl that must succeed; returns stdout (parsed when -o json). */
export async function kc(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const r = await kubectl(kubeconfig, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export async function getJson<T = any>(kubeconfig: string, args: string[]): Promise<T> {
  return JSON.parse(await kc(kubeconfig, ["get", ...args, "-o", "json"])) as T;
}

export async function moduleUp(cluster: string, env: Record<string, string> = {}): Promise<void> {
  const r = await run("bash", ["hack/module.sh", "up", cluster], { env, timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`hack/module.sh up ${cluster} failed:\n${r.stderr}`);
}

export async function moduleDown(cluster: string): Promise<void> {
  await run("bash", ["hack/module.sh", "down", cluster], { timeoutMs: 60_000 });
}

export async function until<T>(what: string, fn: () => Promise<T>, ms = 30_000): Promise<Exclude<NonNullable<T>, false | "" | 0>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as Exclude<NonNullable<T>, false | "" | 0>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message ?? last}` : ""}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
