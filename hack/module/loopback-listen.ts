// Preloaded (`node --import`) into a module run by hack/module.sh: Pepr 1.1.4's webhook server
// calls `listen(port)`, i.e. on every interface. Test clusters live on loopback, so a listen
// with only a port is bound to $ENTANGLE_WEBHOOK_HOST (127.0.0.1) instead. Explicit hosts
// (libp2p, health endpoints) are left alone.
// Why a monkeypatch: Pepr 1.1.4 has no setting for the webhook's host (lib.js: `.listen(port)`),
// and this matters only to test clusters. It is dev-only: nothing imports it, only hack/module.sh
// preloads it, it is not in the build (pepr build, the image), and without ENTANGLE_WEBHOOK_HOST it
// changes nothing. A module in a real cluster listens as Pepr does, on every interface of its pod.
import { Server } from "node:net";

const host = process.env.ENTANGLE_WEBHOOK_HOST;
if (host) {
  const listen = Server.prototype.listen as (this: Server, ...args: unknown[]) => Server;
  Server.prototype.listen = function (this: Server, ...args: unknown[]) {
    if (typeof args[0] === "number" && (args.length === 1 || typeof args[1] === "function")) args.splice(1, 0, host);
    return listen.apply(this, args);
  } as typeof Server.prototype.listen;
}
