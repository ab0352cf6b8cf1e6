#!/usr/bin/env node
// `entangle` entry point. The code is TypeScript run by Node's built-in type stripping, and
// libp2p 3 needs Node >= 22; when an older `node` starts us, re-run with the Node binary that
// the `node` npm package (a dependency) installed, so nobody installs Node by hand.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  const require = createRequire(import.meta.url);
  const bundled = join(dirname(require.resolve("node/package.json")), "bin", "node");
  const r = spawnSync(bundled, process.argv.slice(1), { stdio: "inherit" });
  process.exit(r.status ?? 1);
} else {
  const { main } = await import("../lib/cli/main.ts");
  await main(process.argv.slice(2));
}
