// Gives the module's two Deployments in the flat install YAML a startupProbe (called by
// hack/package.sh). Pepr's liveness probe starts after 10 s and restarts the container after 3
// failures: a module that needs longer to load its bundle (a small edge node, a busy one) was
// restarted forever before it ever listened. The startup probe gives it 5 minutes, then the
// liveness probe takes over unchanged.
//   node hack/startup-probe.ts FILE
import { readFileSync, writeFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

export const STARTUP_PROBE = {
  httpGet: { path: "/healthz", port: 3000, scheme: "HTTPS" },
  periodSeconds: 5,
  failureThreshold: 60,
};
const DEPLOYMENTS = ["pepr-entangle", "pepr-entangle-watcher"];

if (import.meta.main) main(process.argv[2]);

function main(file: string | undefined): void {
  if (!file) throw new Error("usage: node hack/startup-probe.ts FILE");
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  let found = 0;
  for (const doc of docs) {
    if (doc.get("kind") !== "Deployment" || !DEPLOYMENTS.includes(String(doc.getIn(["metadata", "name"])))) continue;
    doc.setIn(["spec", "template", "spec", "containers", 0, "startupProbe"], doc.createNode(STARTUP_PROBE));
    found++;
  }
  if (found !== DEPLOYMENTS.length) throw new Error(`${file}: expected the Deployments ${DEPLOYMENTS.join(", ")}, found ${found}`);
  writeFileSync(file, docs.map((d) => d.toString({ lineWidth: 0 })).join(""));
  console.error(`startup-probe: ${file}`);
}
