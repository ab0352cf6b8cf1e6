#!/usr/bin/env bash
# Installs Entangle into a cluster from hack/cluster.sh the way the README tells users to:
# `npm run build`, then `kubectl apply --server-side` of dist/entangle-crds.yaml and
# dist/pepr-module-entangle.yaml, then wait for the module's pods. From then on admission and
# watch are served in-cluster (Pepr's controller image running our bundle).
#
#   hack/deploy.sh NAME [--no-wait]   install or update (idempotent); returns once the module's
#                                     Deployments are rolled out and Ready; last stdout line
#                                     KUBECONFIG=<path>. --no-wait: return after the apply.
#   hack/deploy.sh NAME --helm        the same through the Helm chart (dist/entangle-chart, release
#                                     "entangle"): helm install, or helm upgrade when installed
#   hack/deploy.sh down NAME          uninstall in the README's order (idempotent; helm uninstall
#                                     when the module was installed with --helm)
#
# Environment:
#   ENTANGLE_PEERS, ENTANGLE_AGENT_IMAGE   set on both module Deployments (admission, watcher);
#                                          unset: the build's values (package.json "pepr.env");
#                                          with --helm: the chart values peers, bootstrap, agent.image.*
#   ENTANGLE_DEPLOY_TIMEOUT                seconds to wait for Ready (default 300)
#   ENTANGLE_DEPLOY_REBUILD=1              run `npm run build` even if dist/ is newer than the sources
#   ENTANGLE_HELM_ARGS                     more arguments for helm install/upgrade (e.g. "--set logLevel=debug")
#
# On a cluster with a node, the images the module needs (Pepr's controller image, the agent
# image) are built by hack/images.sh and imported into the node first. On a cluster without a
# node the module's pods can never run: only --no-wait applies there (pods stay Pending).
# Progress goes to stderr; stdout carries only KEY=value lines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE="$ROOT/node_modules/.bin/node"
KUBECTL="${ENTANGLE_CACHE_DIR:-$HOME/.cache/entangle}/bin/kubectl"
MODULE_YAML=dist/pepr-module-entangle.yaml
CRDS_YAML=dist/entangle-crds.yaml
CHART=dist/entangle-chart
RELEASE=entangle
HELM="${ENTANGLE_CACHE_DIR:-$HOME/.cache/entangle}/bin/helm"
NS=pepr-system
UUID=entangle # package.json "pepr.uuid": Pepr names everything pepr-<uuid>
DEPLOYMENTS=("pepr-$UUID" "pepr-$UUID-watcher")
CRDS=(entanglements.entangle.kairos.io manifests.entangle-proxy.kairos.io)
# What the build's YAML holds outside pepr-system (used when dist/ is gone at uninstall time).
CLUSTER_OBJECTS=("mutatingwebhookconfiguration/pepr-$UUID" "validatingwebhookconfiguration/pepr-$UUID"
  "clusterrolebinding/pepr-$UUID" "clusterrole/pepr-$UUID"
  "validatingadmissionpolicybinding/entangle-sidecar-guard" "validatingadmissionpolicy/entangle-sidecar-guard")

log() { printf '[deploy] %s\n' "$*" >&2; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '6,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
h() { "$HELM" --kubeconfig "$KUBECONFIG" "$@"; }

# Rebuild when any input of `npm run build` is newer than its output. Reusing dist/ also keeps
# the webhook certificate and API path stable, so a second deploy restarts nothing.
build() {
  local newer=""
  [[ -f $MODULE_YAML && -f $CRDS_YAML ]] &&
    newer=$(find pepr.ts capabilities lib package.json package-lock.json patches hack/package.sh hack/chart.ts -newer "$MODULE_YAML" -print -quit)
  if [[ -f $MODULE_YAML && -f $CRDS_YAML && -z $newer && ${ENTANGLE_DEPLOY_REBUILD:-} != 1 ]]; then
    log "reusing $MODULE_YAML (no source is newer)"
    return
  fi
  log "npm run build${newer:+ ($newer changed)}"
  [[ -x $NODE ]] || npm ci --no-audit --no-fund >&2
  npm run build >&2 || die "npm run build failed"
}

has_node() { [[ -n "$(k get nodes -o name 2>/dev/null)" ]]; }

# The images named by the module YAML and the agent image, from hack/images.sh into the node.
import_images() {
  if [[ ! -f hack/images.sh ]]; then
    log "no hack/images.sh: not importing images (the node must already have them)"
    return
  fi
  local wanted=() controller agent dir list ref archive archives=()
  controller=$(sed -n 's/^ *image: *["'\'']\{0,1\}\([^"'\'']*\)["'\'']\{0,1\}$/\1/p' "$MODULE_YAML" | sort -u)
  agent=${ENTANGLE_AGENT_IMAGE:-$(sed -n 's/^export const DEFAULT_AGENT_IMAGE = "\(.*\)";$/\1/p' lib/config.ts)}
  mapfile -t wanted < <(printf '%s\n' $controller "$agent" | sort -u)
  dir=$(bash hack/images.sh build | sed -n 's/^IMAGES_DIR=//p' | tail -n1)
  [[ -d $dir ]] || die "hack/images.sh build printed no IMAGES_DIR="
  list=$(bash hack/images.sh list)
  for ref in "${wanted[@]}"; do
    archive=$(awk -F'\t' -v r="$ref" '$1 == r { print $2 }' <<<"$list")
    if [[ -f $archive ]]; then archives+=("$archive"); else log "warning: hack/images.sh has no image $ref"; fi
  done
  [[ ${#archives[@]} -gt 0 ]] || return 0
  log "importing ${wanted[*]}"
  bash hack/cluster.sh import "$NAME" "${archives[@]}" >&2
}

# The module YAML with the caller's settings on both Deployments (one rollout, and a later
# deploy without them removes them again: same field manager).
module_yaml() {
  local assignments=()
  [[ -n ${ENTANGLE_PEERS:-} ]] && assignments+=("ENTANGLE_PEERS=$ENTANGLE_PEERS")
  [[ -n ${ENTANGLE_AGENT_IMAGE:-} ]] && assignments+=("ENTANGLE_AGENT_IMAGE=$ENTANGLE_AGENT_IMAGE")
  # the DHT bootstrap list and the public-list guard reach every agent the module renders (issue 9)
  [[ -n ${ENTANGLE_BOOTSTRAP:-} ]] && assignments+=("ENTANGLE_BOOTSTRAP=$ENTANGLE_BOOTSTRAP")
  [[ -n ${ENTANGLE_FORBID_PUBLIC_BOOTSTRAP:-} ]] && assignments+=("ENTANGLE_FORBID_PUBLIC_BOOTSTRAP=$ENTANGLE_FORBID_PUBLIC_BOOTSTRAP")
  "$NODE" hack/deploy/env.ts "${assignments[@]}" <"$MODULE_YAML"
}

print_diagnosis() {
  k -n "$NS" get deployments,pods -o wide >&2 || true
  local pod
  for pod in $(k -n "$NS" get pods -o name 2>/dev/null); do
    log "--- $pod: last events and log lines"
    k -n "$NS" get events --field-selector "involvedObject.name=${pod#pod/}" \
      -o custom-columns=REASON:.reason,MESSAGE:.message --no-headers 2>/dev/null | tail -n 5 >&2 || true
    k -n "$NS" logs "$pod" --all-containers --tail=20 >&2 2>/dev/null || true
  done
}

# The chart's values for the caller's settings, as helm arguments (HELM_VALUES).
helm_values() {
  HELM_VALUES=()
  if [[ -n ${ENTANGLE_PEERS:-} ]]; then
    # --set would split the list at its commas into more keys
    HELM_VALUES+=(--set-json "peers=$(jq -cn --arg p "$ENTANGLE_PEERS" '$p | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(length > 0))')")
  fi
  if [[ -n ${ENTANGLE_BOOTSTRAP:-} ]]; then
    HELM_VALUES+=(--set-json "bootstrap=$(jq -cn --arg p "$ENTANGLE_BOOTSTRAP" '$p | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(length > 0))')")
  fi
  if [[ -n ${ENTANGLE_AGENT_IMAGE:-} ]]; then
    local repo=$ENTANGLE_AGENT_IMAGE tag=latest
    if [[ ${ENTANGLE_AGENT_IMAGE##*/} == *:* ]]; then repo=${ENTANGLE_AGENT_IMAGE%:*} tag=${ENTANGLE_AGENT_IMAGE##*:}; fi
    HELM_VALUES+=(--set-string "agent.image.repository=$repo" --set-string "agent.image.tag=$tag")
  fi
  # shellcheck disable=SC2206 # word splitting wanted: several arguments
  [[ -n ${ENTANGLE_HELM_ARGS:-} ]] && HELM_VALUES+=($ENTANGLE_HELM_ARGS)
  return 0
}

helm_installed() { [[ -x $HELM ]] && h status "$RELEASE" >/dev/null 2>&1; }

# The README's Helm commands. An upgrade takes the caller's settings only (--reset-values), like a
# kubectl apply of the same field manager: a later deploy without them removes them again.
helm_up() {
  local wait=$1 timeout=${ENTANGLE_DEPLOY_TIMEOUT:-300} waiting=()
  [[ $wait == 1 ]] && waiting=(--wait --timeout "${timeout}s")
  helm_values
  if helm_installed; then
    log "helm upgrade $RELEASE $CHART ${HELM_VALUES[*]}"
    h upgrade "$RELEASE" "$CHART" --reset-values "${waiting[@]}" "${HELM_VALUES[@]}" >&2 || { print_diagnosis; die "helm upgrade failed"; }
  else
    # The chart creates pepr-system itself; it cannot take over one that `kubectl apply` made.
    if k get namespace "$NS" >/dev/null 2>&1 &&
      [[ -z $(k get namespace "$NS" -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}') ]]; then
      die "the module is installed without Helm in cluster $NAME: hack/deploy.sh down $NAME first"
    fi
    log "helm install $RELEASE $CHART ${HELM_VALUES[*]}"
    h install "$RELEASE" "$CHART" "${waiting[@]}" "${HELM_VALUES[@]}" >&2 || { print_diagnosis; die "helm install failed"; }
  fi
}

# Bounded: both Deployments rolled out to their current spec with every replica Ready.
wait_ready() {
  local timeout=${ENTANGLE_DEPLOY_TIMEOUT:-300} deadline d left
  [[ $timeout =~ ^[0-9]+$ ]] || die "ENTANGLE_DEPLOY_TIMEOUT must be a number of seconds, got '$timeout'"
  deadline=$((SECONDS + timeout))
  for d in "${DEPLOYMENTS[@]}"; do
    left=$((deadline - SECONDS))
    ((left > 0)) || left=1
    if ! k -n "$NS" rollout status "deployment/$d" --timeout="${left}s" >&2; then
      print_diagnosis
      die "the module is not Ready after ${timeout} s (deployment/$d; pods and logs above)"
    fi
  done
}

cmd_up() {
  local t0=$SECONDS wait=$1 with_helm=$2
  if ! has_node; then
    # Its pods would never run: only on request (its webhooks fail open, the sidecar guard then
    # refuses pods that ask for the sidecar).
    [[ $wait == 0 ]] || die "cluster $NAME has no node, so the module's pods could never start (hack/cluster.sh up $NAME --node; or --no-wait to apply anyway)"
    log "cluster $NAME has no node: applying only, its pods stay Pending"
  fi
  [[ $with_helm == 0 ]] || HELM=$(bash hack/cluster.sh helm | sed -n 's/^HELM=//p' | tail -n1)
  build
  has_node && import_images

  if [[ $with_helm == 1 ]]; then
    helm_up "$wait"
    log "helm done in $((SECONDS - t0)) s"
    [[ $wait == 1 ]] && wait_ready && log "module Ready in $((SECONDS - t0)) s"
    echo "KUBECONFIG=$KUBECONFIG"
    return
  fi
  if helm_installed; then
    die "the module is installed with Helm in cluster $NAME (release $RELEASE): use --helm, or hack/deploy.sh down $NAME first"
  fi

  log "applying $CRDS_YAML"
  k apply --server-side --force-conflicts -f "$CRDS_YAML" >&2
  k wait --for=condition=Established --timeout=60s "${CRDS[@]/#/crd/}" >&2
  log "applying $MODULE_YAML${ENTANGLE_PEERS:+ (ENTANGLE_PEERS=$ENTANGLE_PEERS)}${ENTANGLE_AGENT_IMAGE:+ (ENTANGLE_AGENT_IMAGE=$ENTANGLE_AGENT_IMAGE)}"
  # --force-conflicts: take over fields an earlier `npx pepr deploy` (field manager "pepr") set
  module_yaml | k apply --server-side --force-conflicts -f - >&2
  log "applied in $((SECONDS - t0)) s"

  if [[ $wait == 1 ]]; then
    wait_ready
    log "module Ready in $((SECONDS - t0)) s"
  fi
  echo "KUBECONFIG=$KUBECONFIG"
}

# The README's uninstall: CRs first, while the module runs their finalizers (remote cleanup);
# then the module (webhooks, sidecar guard), the CRDs.
cmd_down() {
  local t0=$SECONDS ready
  ready=$(k -n "$NS" get deployment "pepr-$UUID" "pepr-$UUID-watcher" -o 'jsonpath={.items[*].status.readyReplicas}' 2>/dev/null || true)
  if [[ $(wc -w <<<"$ready") != 2 ]]; then
    # Nothing serves the webhooks (which also see Manifests deletions), nor runs finalizers.
    log "the module is not running: removing its webhooks first"
    k delete --ignore-not-found "${CLUSTER_OBJECTS[@]:0:2}" >&2
  fi
  local crs=entanglements.entangle.kairos.io,manifests.entangle-proxy.kairos.io
  if k get crd "${CRDS[@]}" >/dev/null 2>&1; then
    log "deleting every Entanglement and Manifests (finalizers clean up)"
    if ! k delete "$crs" --all -A --timeout=60s >&2; then
      log "warning: finalizers did not finish in 60 s; removing them (remote objects may be left)"
      local obj
      for obj in $(k get "$crs" -A -o jsonpath='{range .items[*]}{.kind}/{.metadata.name}@{.metadata.namespace}{"\n"}{end}'); do
        k -n "${obj#*@}" patch "${obj%@*}" --type=merge -p '{"metadata":{"finalizers":null}}' >&2 || true
      done
    fi
  fi
  log "deleting the module"
  if helm_installed; then
    # helm deletes webhook configurations last (kinds it does not know): first, as above
    k delete --ignore-not-found "${CLUSTER_OBJECTS[@]:0:2}" >&2
    h uninstall "$RELEASE" --wait --timeout 120s >&2
  elif [[ -f $MODULE_YAML ]]; then
    k delete --ignore-not-found --timeout=120s -f "$MODULE_YAML" >&2
  else
    k delete --ignore-not-found --timeout=120s "${CLUSTER_OBJECTS[@]}" "namespace/$NS" >&2
  fi
  log "deleting the CRDs"
  k delete --ignore-not-found --timeout=60s "${CRDS[@]/#/crd/}" >&2
  log "uninstalled in $((SECONDS - t0)) s"
}

case "${1:-}" in
down)
  [[ $# == 2 ]] || usage
  NAME=$2 sub=down ;;
"" | -*) usage ;;
*)
  NAME=$1 sub=up wait=1 with_helm=0
  for arg in "${@:2}"; do
    case $arg in
    --no-wait) wait=0 ;;
    --helm) with_helm=1 ;;
    *) usage ;;
    esac
  done ;;
esac
[[ -x $KUBECTL ]] || die "no kubectl at $KUBECTL (hack/cluster.sh build makes it)"
KUBECONFIG=$(bash hack/cluster.sh kubeconfig "$NAME") || die "cluster $NAME is not up (hack/cluster.sh up $NAME [--node])"
export KUBECONFIG
if [[ $sub == down ]]; then cmd_down; else cmd_up "$wait" "$with_helm"; fi
