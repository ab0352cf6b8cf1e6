#!/usr/bin/env bash
# `npm run demo`: installs dependencies when missing, then runs the demo with the Node 22 that
# the `node` npm package provides (libp2p 3 needs Node >= 22; the machine may have older).
set -euo pipefail
cd "$(dirname "$0")/.."
# No benchmark, demo or soak may reach the public libp2p bootstrap peers: the built-in list is a
# hard error here, and agents run without a DHT unless ENTANGLE_BOOTSTRAP names the NAT lab's.
export ENTANGLE_FORBID_PUBLIC_BOOTSTRAP=1 ENTANGLE_BOOTSTRAP=${ENTANGLE_BOOTSTRAP:-none}
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund
exec node_modules/.bin/node hack/demo.ts "$@"
