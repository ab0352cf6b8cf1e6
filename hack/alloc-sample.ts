// Bytes allocated per site, over one round of hack/bench-echo.ts (issue 10): V8's sampling heap
// profiler (through the inspector, objects collected by GC included), started and stopped by
// SIGWINCH, which bench-echo sends before and after round BENCH_ECHO_SIGNAL.
//
//   ALLOC_DIR=/tmp/x BENCH_AGENT_ARGS="--import ./hack/alloc-sample.ts" BENCH_ECHO_SIGNAL=3 \
//     BENCH_ROUNDS=4 BENCH_ECHOES=5000 node hack/bench-echo.ts
//   node hack/alloc-sample.ts /tmp/x/alloc-PID-*.json 5000     # bytes per echo, by site
//
// ALLOC_MINOR=0 leaves out what scavenges collected: what is left was promoted to the old space
// (or is still live), the garbage that grows the heap between full GCs.
// As a preload (ALLOC_DIR set) each relaying process writes ALLOC_DIR/alloc-PID-TIME.json. Run
// on such a file, it prints the total and the top sites: a function's own allocations, with those
// of the list and stream helpers it called (Uint8ArrayList's sublist, subarray, append ...)
// counted as its own, since the helpers are where nearly every site allocates.
import { Session } from "node:inspector";
import { readFileSync, writeFileSync } from "node:fs";

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const HELPERS = new Set(
  "sublist subarray append appendAll _subList Uint8ArrayList _Uint8ArrayList consume prepend prependAll concat allocUnsafe alloc next".split(" "),
);

if (process.env.ALLOC_DIR !== undefined && process.argv[1]?.endsWith("alloc-sample.ts") !== true) {
  const session = new Session();
  session.connect();
  let sampling = false;
  process.on("SIGWINCH", () => {
    sampling = !sampling;
    if (sampling)
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 256,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: process.env.ALLOC_MINOR !== "0",
      });
    else
      session.post("HeapProfiler.stopSampling", (err, r) => {
        if (err === null) writeFileSync(`${process.env.ALLOC_DIR}/alloc-${process.pid}-${Date.now()}.json`, JSON.stringify(r.profile));
      });
  });
} else if (process.argv[1]?.endsWith("alloc-sample.ts") === true) {
  const [file, per = "1", top = "30"] = process.argv.slice(2);
  const head = (JSON.parse(readFileSync(file, "utf8")) as { head: Node }).head;
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: Node, owner: string | undefined) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || "(anonymous)";
    const site = HELPERS.has(name) && owner !== undefined ? owner : `${name} ${url.split("/").pop()}:${lineNumber + 1}`;
    total += node.selfSize;
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    for (const c of node.children) walk(c, site);
  };
  walk(head, undefined);
  const n = Number(per);
  console.log(`total ${(total / n).toFixed(0)} bytes per ${n === 1 ? "run" : "echo"}`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) console.log(`${(bytes / n).toFixed(0).padStart(7)}  ${site}`);
}
