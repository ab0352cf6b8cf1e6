// Summarises a V8 .cpuprofile (`node --cpu-prof`, e.g. through BENCH_AGENT_ARGS of hack/bench-rr.ts):
// self and total time by function, self time by package (node_modules package, our lib/, Node's
// internals, GC, the profiler's own pseudo-frames), optionally per unit of work (e.g. per new
// connection). A bundled agent's frames are mapped to their package through the `// node_modules/...`
// comments esbuild leaves before each module.
//
//   node hack/cpu-prof-summary.ts FILE.cpuprofile [--from=S] [--to=S] [--per=N] [--top=N] [--timeline] [--callers=TEXT]
//
// --from/--to: only samples within that many seconds of the profile's start (--timeline prints
// busy milliseconds per second, to find the window); --per=N: also µs per unit (N units in the
// window); --top: rows per table (30); --callers=TEXT: the inclusive time of the functions whose
// name and place contain TEXT, by the chain of callers (four deep) they were called from.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface Frame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfNode {
  id: number;
  callFrame: Frame;
  children?: number[];
}
interface Profile {
  nodes: ProfNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith("--"));
if (file === undefined) throw new Error("usage: cpu-prof-summary.ts FILE.cpuprofile [--from=S] [--to=S] [--per=N] [--top=N] [--timeline]");
const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const from = Number(opt("from") ?? 0) * 1e6;
const to = Number(opt("to") ?? Infinity) * 1e6;
const per = Number(opt("per") ?? NaN);
const top = Number(opt("top") ?? 30);
const callersOf = opt("callers");
const callers = new Map<string, number>();

const prof = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

/** bundle file -> sorted [line, module path] of esbuild's module comments */
const bundleModules = new Map<string, Array<[number, string]>>();
function moduleOf(url: string, line: number): string | undefined {
  if (!url.startsWith("file://") || !url.endsWith(".mjs")) return undefined;
  let mods = bundleModules.get(url);
  if (mods === undefined) {
    mods = [];
    try {
      readFileSync(fileURLToPath(url), "utf8")
        .split("\n")
        .forEach((l, i) => {
          const m = /^\/\/ ((?:node_modules|lib|bin)\/\S+)$/.exec(l);
          if (m !== null) mods!.push([i, m[1]]);
        });
    } catch {
      // gone
    }
    bundleModules.set(url, mods);
  }
  let found: string | undefined;
  for (const [at, path] of mods) {
    if (at > line) break;
    found = path;
  }
  return found;
}

function packageOf(f: Frame): string {
  if (f.url === "") return f.functionName.startsWith("(") ? f.functionName : "(native)";
  if (f.url.startsWith("node:")) return "node internals";
  const path = moduleOf(f.url, f.lineNumber) ?? f.url;
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const lib = /(?:^|\/)(lib\/[^/]+\/[^/]+|lib\/[^/]+|bin\/[^/]+)$/.exec(path);
  return lib !== null ? `ours: ${lib[1]}` : path;
}

const where = (f: Frame) => {
  const mod = moduleOf(f.url, f.lineNumber);
  const file = (mod ?? f.url).replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/(lib|bin|hack)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
};

const self = new Map<string, number>();
const total = new Map<string, number>();
const pkgs = new Map<string, number>();
const timeline = new Map<number, number>();
let t = prof.startTime;
let busy = 0;
let idle = 0;
for (let i = 0; i < prof.samples.length; i++) {
  t += prof.timeDeltas[i];
  const rel = t - prof.startTime;
  if (rel < from || rel > to) continue;
  const dt = prof.timeDeltas[i + 1] ?? 0;
  const leaf = byId.get(prof.samples[i])!;
  if (leaf.callFrame.functionName === "(idle)") {
    idle += dt;
    continue;
  }
  busy += dt;
  const sec = Math.floor(rel / 1e6);
  timeline.set(sec, (timeline.get(sec) ?? 0) + dt);
  const key = where(leaf.callFrame);
  self.set(key, (self.get(key) ?? 0) + dt);
  const pkg = packageOf(leaf.callFrame);
  pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + dt);
  if (callersOf !== undefined) {
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      if (!where(byId.get(id)!.callFrame).includes(callersOf)) continue;
      const chain: string[] = [];
      for (let p = parent.get(id); p !== undefined && chain.length < 4; p = parent.get(p)) chain.push(where(byId.get(p)!.callFrame));
      const k = `${where(byId.get(id)!.callFrame)} <- ${chain.join(" <- ")}`;
      callers.set(k, (callers.get(k) ?? 0) + dt);
      break;
    }
  }
  const seen = new Set<string>();
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const k = where(byId.get(id)!.callFrame);
    if (seen.has(k)) continue;
    seen.add(k);
    total.set(k, (total.get(k) ?? 0) + dt);
  }
}

const fmt = (us: number) => {
  const pct = ((100 * us) / busy).toFixed(1).padStart(5);
  const each = Number.isNaN(per) ? "" : `${(us / per).toFixed(1).padStart(8)} µs/unit`;
  return `${(us / 1000).toFixed(1).padStart(9)} ms ${pct} %${each}`;
};
const table = (title: string, m: Map<string, number>, n = top) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${fmt(v)}  ${k}`);
};

console.log(
  `${file}: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms in the window${Number.isNaN(per) ? "" : `; ${(busy / per).toFixed(0)} µs busy per unit (${per} units)`}`,
);
if (args.includes("--timeline")) console.log([...timeline].map(([s, us]) => `${s}s:${(us / 1000).toFixed(0)}`).join(" "));
table("self time by package", pkgs, 40);
table("self time by function", self);
table("total time by function (inclusive)", total);
if (callersOf !== undefined) table(`callers of ${callersOf}`, callers);
