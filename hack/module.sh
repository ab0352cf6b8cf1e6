#!/usr/bin/env bash
# Runs this Pepr module against a local cluster from hack/cluster.sh, the way
# `npx pepr dev --host localhost` does (admission webhook + watch in one local process), but on
# a port of its own (pepr dev's is always 3000) and bound to 127.0.0.1, so several clusters can
# each have their module. In-cluster install instead: hack/deploy.sh.
#
#   hack/module.sh up NAME     start (idempotent); returns once the webhook serves
#   hack/module.sh down NAME   stop it and remove its webhook configurations
#   hack/module.sh logs NAME   print its log
#
# The caller's environment is passed through (ENTANGLE_PEERS, ENTANGLE_AGENT_IMAGE, ...).
# ENTANGLE_MODULE_BUNDLE=1 runs the module bundled into one file (hack/module/bundle.ts), as an
# installed module runs, instead of from the TypeScript sources.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE="$ROOT/node_modules/.bin/node"
STATE_ROOT=${ENTANGLE_STATE_DIR:-/tmp/entangle-clusters}

usage() { echo "usage: hack/module.sh up|down|logs NAME" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 name=$2
dir="$STATE_ROOT/$name/module"
log() { echo "module[$name]: $*" >&2; }

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }
serving() { curl -fsk --max-time 2 "https://127.0.0.1:$(cat "$dir/port")/healthz" >/dev/null 2>&1; }

case "$cmd" in
up)
  [ -x "$NODE" ] || npm ci --no-audit --no-fund >&2
  kubeconfig=$(bash hack/cluster.sh up "$name" | tail -n1 | sed 's/^KUBECONFIG=//')
  export KUBECONFIG=$kubeconfig
  mkdir -p "$dir"
  if running && serving; then
    log "already running on https://127.0.0.1:$(cat "$dir/port")"
  else
    running && kill "$(cat "$dir/pid")" 2>/dev/null || true
    port=$("$NODE" -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    echo "$port" >"$dir/port"
    # webhook TLS: a throwaway CA and a serving cert for 127.0.0.1
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=entangle-module-ca" \
      -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 30 -extfile "$dir/san.ext" -out "$dir/tls.crt" 2>/dev/null
    api_path=$(openssl rand -hex 32)
    log "registering webhooks for https://127.0.0.1:$port"
    "$NODE" hack/module/webhooks.ts up "https://127.0.0.1:$port" "$dir/ca.crt" "$api_path" >&2
    entry=pepr.ts
    if [ "${ENTANGLE_MODULE_BUNDLE:-}" = 1 ]; then
      entry="$dir/module.mjs"
      "$NODE" hack/module/bundle.ts "$entry" >&2
    fi
    log "starting $entry (log: $dir/module.log)"
    PEPR_MODE=dev PEPR_API_PATH=$api_path SSL_KEY_PATH=$dir/tls.key SSL_CERT_PATH=$dir/tls.crt \
      PEPR_PRETTY_LOGS=false LOG_LEVEL=${LOG_LEVEL:-info} \
      ENTANGLE_WEBHOOK_PORT=$port ENTANGLE_WEBHOOK_HOST=127.0.0.1 \
      setsid nohup "$NODE" --import ./hack/module/loopback-listen.ts "$entry" >"$dir/module.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 1 120); do
      serving && break
      running || { tail -n 30 "$dir/module.log" >&2; log "exited during start"; exit 1; }
      sleep 0.5
    done
    serving || { tail -n 30 "$dir/module.log" >&2; log "not serving after 60 s"; exit 1; }
    log "serving on https://127.0.0.1:$port"
  fi
  echo "MODULE_URL=https://127.0.0.1:$(cat "$dir/port")"
  echo "KUBECONFIG=$kubeconfig"
  ;;
down)
  if running; then
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  kubeconfig="$STATE_ROOT/$name/kubeconfig"
  if [ -f "$kubeconfig" ]; then
    KUBECONFIG=$kubeconfig timeout 20 "$NODE" hack/module/webhooks.ts down >&2 || true
  fi
  rm -rf "$dir"
  log "stopped"
  ;;
logs) cat "$dir/module.log" ;;
*) usage ;;
esac
