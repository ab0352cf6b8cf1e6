// Sets environment variables on the module's Deployments in `npm run build`'s YAML, so
// hack/deploy.sh can give the module the caller's ENTANGLE_PEERS / ENTANGLE_AGENT_IMAGE without
// editing package.json ("pepr": {"env": …}) and rebuilding, and in one rollout (a later
// `kubectl set env` would restart the pods a second time).
//
//   node hack/deploy/env.ts NAME=VALUE... < dist/pepr-module-entangle.yaml > module.yaml
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

interface EnvVar {
  name: string;
  value?: string;
  [key: string]: unknown;
}
interface Doc {
  kind?: string;
  spec?: { template?: { spec?: { containers?: { env?: EnvVar[] }[] } } };
  [key: string]: unknown;
}

/** "NAME=VALUE" arguments as pairs; a malformed one is an error naming it. */
export function parseAssignments(args: string[]): [string, string][] {
  return args.map((arg) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(arg);
    if (!m) throw new Error(`not NAME=VALUE: ${JSON.stringify(arg)}`);
    return [m[1], m[2]];
  });
}

/** Copies of the documents with each pair set (replaced or appended) on every Deployment's containers. */
export function withEnv<D>(docs: D[], pairs: [string, string][]): D[] {
  const isDeployment = (d: unknown) => (d as Doc | null)?.kind === "Deployment";
  if (pairs.length > 0 && !docs.some(isDeployment)) throw new Error("no Deployment in the module YAML");
  return docs.map((doc) => {
    if (!isDeployment(doc)) return doc;
    const copy = structuredClone(doc) as Doc;
    for (const container of copy.spec?.template?.spec?.containers ?? []) {
      const env = (container.env ?? []).filter((e) => !pairs.some(([name]) => name === e.name));
      container.env = [...env, ...pairs.map(([name, value]) => ({ name, value }))];
    }
    return copy as D;
  });
}

if (import.meta.main) {
  try {
    const pairs = parseAssignments(process.argv.slice(2));
    const docs = (yaml.loadAll(readFileSync(0, "utf8")) as (Doc | null)[]).filter((d): d is Doc => !!d);
    // lineWidth -1: never fold the module Secret's long base64 line
    process.stdout.write(
      withEnv(docs, pairs)
        .map((d) => yaml.dump(d, { lineWidth: -1, noRefs: true }))
        .join("---\n"),
    );
  } catch (err) {
    process.stderr.write(`deploy/env: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
