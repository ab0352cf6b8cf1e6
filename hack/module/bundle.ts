// The module as one bundled file (esbuild, as `pepr build` bundles it for the cluster), for
// hack/module.sh with ENTANGLE_MODULE_BUNDLE=1: run from the TypeScript sources, the module also
// holds Node's type-stripping compiler and a module graph of ~1,000 node_modules files, which an
// installed module does not (bench:controller --bundle measures both ways).
//
//   node hack/module/bundle.ts OUTFILE
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const [outfile] = process.argv.slice(2);
if (!outfile) throw new Error("usage: node hack/module/bundle.ts OUTFILE");
await build({
  absWorkingDir: fileURLToPath(new URL("../..", import.meta.url)),
  entryPoints: ["pepr.ts"],
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node22",
  outfile,
  // CommonJS dependencies bundled into an ES module still call require() for Node's built-ins
  banner: { js: "import { createRequire as __entangleRequire } from 'node:module'; const require = __entangleRequire(import.meta.url);" },
  // Pepr finds a kind by its class name (kubernetes-fluent-client): `pepr build` keeps names too
  keepNames: true,
  legalComments: "none",
  logLevel: "warning",
});
