#!/usr/bin/env bash
# Second half of `npm run build` (after `pepr build`): ship our CRDs with the build, and give
# Pepr's Helm chart Entangle's values (hack/chart.ts).
#
#   dist/entangle-crds.yaml             for `kubectl apply -f` before (or without) the module
#   dist/entangle-chart/crds/crds.yaml  Helm installs a chart's crds/ before its templates
#
# The watcher also applies these CRDs when it starts (lib/crds/apply.ts); shipping them lets
# users install them up front, review them, and use `kubectl explain` before the module runs.
set -euo pipefail
cd "$(dirname "$0")/.."

crds=lib/crds/crds.yaml
[ -s "$crds" ] || { echo "package: $crds missing" >&2; exit 1; }

cp "$crds" dist/entangle-crds.yaml
echo "package: dist/entangle-crds.yaml" >&2
if [ -d dist/entangle-chart ]; then
  mkdir -p dist/entangle-chart/crds
  cp "$crds" dist/entangle-chart/crds/crds.yaml
  echo "package: dist/entangle-chart/crds/crds.yaml" >&2
  node=node_modules/.bin/node
  [ -x "$node" ] || node=node
  "$node" hack/chart.ts dist/entangle-chart
fi

# the module's Deployments get a startupProbe (the chart's too: hack/chart.ts); the sidecar guard
# (a ValidatingAdmissionPolicy) ships with the module, so uninstalling removes it
node=node_modules/.bin/node
[ -x "$node" ] || node=node
module_yaml=dist/pepr-module-entangle.yaml
"$node" hack/startup-probe.ts "$module_yaml"
if ! grep -q "name: entangle-sidecar-guard" "$module_yaml"; then
  { echo "---"; "$node" hack/guard-yaml.ts; } >>"$module_yaml"
  echo "package: sidecar guard added to $module_yaml" >&2
fi
if [ -d dist/entangle-chart/templates ]; then
  "$node" hack/guard-yaml.ts >dist/entangle-chart/templates/sidecar-guard.yaml
  echo "package: dist/entangle-chart/templates/sidecar-guard.yaml" >&2
fi
