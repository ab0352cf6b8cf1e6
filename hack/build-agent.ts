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
// npm could not hoist some small libraries shared by most of libp2p (its root holds an older
// major), so node_modules holds many identical copies of them, and a bundle by path held each:
// 6 copies of uint8arraylist 3.0.2, 14 of uint8arrays 6.1.1, 5 of protons-runtime 7.1.2. Every
// copy is its own class and its own functions to warm up: a list made by one package's copy and
// read by another's made those call sites polymorphic, and V8 compiled each copy separately.
// The bundle takes one copy of each package and version (`oneCopy` below); other versions stay.
//
//   node hack/build-agent.ts [OUTDIR]
import { build, type Plugin } from "esbuild";
import { fileURLToPath } from "node:url";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = process.argv[2] ?? `${root}dist/agent`;
rmSync(outdir, { recursive: true, force: true });

/**
 * Every import of these packages resolves to one copy per version. uint8arraylist 2.4.9 (what
 * Noise and yamux ask for) is 3.0.2 but for comments and the major of its uint8arrays dependency
 * (whose `asUint8Array` copies a SharedArrayBuffer-backed view, never met here): it takes the
 * newest copy too, so the data path's lists (TCP, Noise, yamux, streams) are of one class.
 */
const DEDUPE = /^(uint8arraylist|uint8arrays|protons-runtime)(\/.*)?$/;
const ANY_VERSION = new Set(["uint8arraylist"]);
const versionOf = (dir: string) => (JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as { version: string }).version;
const major = (v: string) => Number(v.split(".")[0]);

/** Every copy of package `name` under node_modules (nested ones too), in a stable order. */
function copiesOf(name: string, dir = `${root}node_modules`, depth = 0): string[] {
  const found: string[] = existsSync(`${dir}/${name}/package.json`) ? [`${dir}/${name}`] : [];
  if (depth > 4) return found;
  for (const entry of readdirSync(dir).sort()) {
    const packages = entry.startsWith("@") ? readdirSync(`${dir}/${entry}`).map((p) => `${entry}/${p}`) : [entry];
    for (const p of packages) if (existsSync(`${dir}/${p}/node_modules`)) found.push(...copiesOf(name, `${dir}/${p}/node_modules`, depth + 1));
  }
  return found;
}

function oneCopy(): Plugin {
  const chosen = new Map<string, { dir: string; version: string }>(); // "name@version" or "name" -> directory
  for (const name of ANY_VERSION) {
    const newest = copiesOf(name).reduce<{ dir: string; version: string } | undefined>((best, dir) => {
      const version = versionOf(dir);
      return best === undefined || major(version) > major(best.version) ? { dir, version } : best;
    }, undefined);
    if (newest !== undefined) chosen.set(name, newest);
  }
  return {
    name: "one-copy",
    setup(b) {
      b.onResolve({ filter: DEDUPE }, async (args) => {
        if (args.pluginData === "one-copy") return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: "one-copy" });
        if (r.errors.length > 0) return r;
        const name = DEDUPE.exec(args.path)![1];
        const at = r.path.lastIndexOf(`/node_modules/${name}/`);
        if (at < 0) return r;
        const dir = r.path.slice(0, at + `/node_modules/${name}`.length);
        const version = versionOf(dir);
        const key = ANY_VERSION.has(name) ? name : `${name}@${version}`;
        if (!chosen.has(key)) chosen.set(key, { dir, version }); // the first copy seen of this version
        return { ...r, path: chosen.get(key)!.dir + r.path.slice(dir.length) };
      });
    },
  };
}

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
  plugins: [oneCopy()],
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.error(`build-agent: ${outdir} (${(bytes / 1048576).toFixed(1)} MiB)`);
