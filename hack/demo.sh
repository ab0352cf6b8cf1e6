#!/usr/bin/env bash
# `npm run demo`: installs dependencies when missing, then runs the demo with the Node 22 that
# the `node` npm package provides (libp2p 3 needs Node >= 22; the machine may have older).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund
exec node_modules/.bin/node hack/demo.ts "$@"
