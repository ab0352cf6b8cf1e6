// Entanglement controller and sidecar injection: Pepr bindings only, logic in lib/.
import { Capability, a } from "pepr";
import { Entanglement } from "../lib/crds/index.ts";
import {
  forgetEntanglement,
  reconcileEntanglement,
  reconcileOwnerOf,
  reconcileOwnerOfPod,
  reconcileUsersOfSecret,
  reconcileUsersOfService,
} from "../lib/controller/entanglement.ts";
import { mutatePod, validatePod } from "../lib/controller/sidecar.ts";
import { moduleConfig } from "../lib/config.ts";
import { everyPhase as everyPhaseOf } from "./every-phase.ts";
import { DELETED } from "../lib/k8s/api.ts";

// at load, in every module pod: a bad ENTANGLE_PEERS entry is logged now, not at first use
moduleConfig();

export const Entangle = new Capability({
  name: "entangle",
  description: "Entanglement controller and entangle sidecar injection",
});

const { When } = Entangle;

// Each watch binding is one watch for every phase (capabilities/every-phase.ts). A deleted
// Entanglement is forgotten by the controller's caches (issue 11), in its turn after the
// reconciles queued for it.
const everyPhase = (register: () => unknown) => everyPhaseOf(Entangle, register);
everyPhase(() =>
  When(Entanglement)
    .IsCreatedOrUpdated()
    .Reconcile((cr, phase) => (phase === DELETED ? forgetEntanglement(cr) : reconcileEntanglement(cr))),
);

// the agent Deployment's availability feeds the Entanglement's Ready condition
everyPhase(() =>
  When(a.Deployment)
    .IsCreatedOrUpdated()
    .WithLabel("app.kubernetes.io/managed-by", "entangle")
    .Watch((dep, phase) => reconcileOwnerOf(dep, phase)),
);

// its pods' container statuses say why an agent exits (its termination message)
everyPhase(() =>
  When(a.Pod)
    .IsCreatedOrUpdated()
    .WithLabel("app.kubernetes.io/managed-by", "entangle")
    .Watch((pod, phase) => reconcileOwnerOfPod(pod, phase)),
);

// spec.serviceRef: its Service created, changed or deleted after the Entanglement
everyPhase(() =>
  When(a.Service)
    .IsCreatedOrUpdated()
    .Watch((svc, phase) => reconcileUsersOfService(svc, phase)),
);

// a Secret created, fixed or deleted after its Entanglement changes that Entanglement's status.
// Every Secret of the cluster comes by (a watch cannot select "Secrets some CR names"); each
// event costs one pass over the Entanglements held in memory (lib/controller/memory.ts users),
// no API request and no listing.
everyPhase(() =>
  When(a.Secret)
    .IsCreatedOrUpdated()
    .Watch((s, phase) => reconcileUsersOfSecret(s, phase)),
);

When(a.Pod)
  .IsCreated()
  .Mutate((req) => mutatePod(req));

When(a.Pod)
  .IsCreated()
  .Validate((req) => validatePod(req));
