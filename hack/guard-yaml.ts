// Prints the sidecar guard (lib/admission/sidecar-guard.ts) as YAML for the install files, so
// that `kubectl delete -f` / `helm uninstall` remove it with the module (the watcher also applies
// it at start, which covers `npx pepr deploy`).
import yaml from "js-yaml";
import cfg from "../package.json" with { type: "json" };
import { sidecarGuard } from "../lib/admission/sidecar-guard.ts";

process.stdout.write(
  sidecarGuard(cfg.pepr.alwaysIgnore.namespaces)
    .map((o) => yaml.dump(o, { lineWidth: -1 }))
    .join("---\n"),
);
