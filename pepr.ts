import { PeprModule } from "pepr";
import cfg from "./package.json" with { type: "json" };
import { capabilities } from "./capabilities/index.ts";
import { ensureCrds } from "./lib/crds/apply.ts";
import { ensureSidecarGuard } from "./lib/admission/apply.ts";

// Start once our CRDs and the sidecar guard exist (the watcher applies them; admission pods need
// not), on the port hack/module.sh chose (Pepr's default 3000 in a cluster).
const module = new PeprModule(cfg, capabilities, { deferStart: true });
const port = Number(process.env.ENTANGLE_WEBHOOK_PORT) || 3000;
const mode = process.env.PEPR_MODE;
if (mode !== "build") {
  const watcher = mode === "dev" || process.env.PEPR_WATCH_MODE === "true";
  const ready = watcher ? ensureCrds().then(() => ensureSidecarGuard(cfg.pepr.alwaysIgnore.namespaces)) : Promise.resolve();
  ready.then(
    () => module.start(port),
    (err: Error) => {
      console.error(`entangle: cannot apply CRDs: ${err.message}`);
      process.exit(1);
    },
  );
}
