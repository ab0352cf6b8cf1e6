// The agent as a few bundled files, for the agent image and the benchmark (`npm run build:agent`):
//
//   dist/agent/entangle.mjs          the CLI (`entangle agent ...`, `entangle token ...`)
//   dist/agent/dht-services.mjs      the DHT, AutoNAT and DCUtR, loaded only when asked for
//   dist/agent/chunk-*.mjs           code both share (one copy of libp2p's classes)
//
// Why: run from TypeScript sources, an idle agent held ~136 MiB, of which ~14 MiB is Node's
// type-stripping compiler and most of the rest the module graph of ~1,000 files of
// node_modules; bundled, the same agent holds ~90 MiB, and the image needs no node_modules.
//
//   node hack/build-agent.ts [OUTDIR]
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { rmSync } from "node:fs";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = process.argv[2] ?? `${root}dist/agent`;
rmSync(outdir, { recursive: true, force: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { entangle: "bin/agent-entry.ts", "dht-services": "lib/p2p/dht-services.ts" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node22",
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunk-[hash]",
  // CommonJS dependencies bundled into ES modules still call require() for Node's built-ins
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __entangleRequire } from 'node:module'; const require = __entangleRequire(import.meta.url);" },
  legalComments: "linked",
  logLevel: "warning",
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.error(`build-agent: ${outdir} (${(bytes / 1048576).toFixed(1)} MiB)`);
