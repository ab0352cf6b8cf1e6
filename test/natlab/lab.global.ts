// vitest globalSetup for the `natlab` project: the NAT lab of hack/natlab.sh (network namespaces,
// NAT routers, bootstrap/DHT nodes and a relay on this machine only), shared by the project's files.
// Tests read the lab's bootstrap list with `inject("natlabBootstrap")` and its relay with
// `inject("natlabRelay")`. NATLAB_KEEP=1 leaves the lab up after the run (`up` reuses it).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    natlabBootstrap: string;
    natlabRelay: string;
    /** empty when the lab can run; else why not (not root, no ip netns or nft) */
    natlabSkip: string;
  }
}

function lab(cmd: "up" | "down"): string {
  const r = spawnSync("bash", ["hack/natlab.sh", cmd], { encoding: "utf8", timeout: 180_000 });
  if (r.status !== 0) throw new Error(`hack/natlab.sh ${cmd} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

export default function setup(project: TestProject): () => void {
  const why =
    process.getuid?.() !== 0
      ? "needs root (network namespaces)"
      : spawnSync("nft", ["--version"]).status !== 0 || spawnSync("ip", ["netns", "list"]).status !== 0
        ? "needs nft and ip netns"
        : "";
  project.provide("natlabSkip", why);
  if (why !== "") {
    project.provide("natlabBootstrap", "");
    project.provide("natlabRelay", "");
    return () => {};
  }
  const t0 = performance.now();
  const out = lab("up");
  const bootstrap = /^ENTANGLE_BOOTSTRAP=(.+)$/m.exec(out)?.[1];
  if (!bootstrap) throw new Error(`hack/natlab.sh up printed no ENTANGLE_BOOTSTRAP= line:\n${out}`);
  process.stderr.write(`[natlab] up in ${Math.round(performance.now() - t0)} ms\n`);
  project.provide("natlabBootstrap", bootstrap);
  project.provide("natlabRelay", readFileSync(`${process.env.NATLAB_STATE || "/tmp/natlab"}/relay`, "utf8").trim());
  return () => {
    if (process.env.NATLAB_KEEP === "1") return void process.stderr.write("[natlab] kept up (NATLAB_KEEP=1)\n");
    lab("down");
  };
}
