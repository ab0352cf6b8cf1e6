#!/usr/bin/env bash
# Pack OCI images by hand: no Docker, no daemon, no registry. Used by hack/images.sh.
#
#   hack/oci-pack.sh layer SRC_DIR OUT.tar [UID:GID|keep]
#       SRC_DIR's contents as one layer tar, byte-for-byte reproducible (sorted names, mtime 0),
#       every entry owned by UID:GID (default 0:0), or by its owner on disk with `keep` (a Debian
#       root file system has files of other groups, e.g. /etc/shadow).
#   hack/oci-pack.sh image OUT.tar REF CONFIG_JSON BLOB_DIR LAYER.tar...
#       An OCI archive (oci-layout, index.json, blobs/) of the layers, bottom first, with the
#       image config CONFIG_JSON (the "config" object, e.g. '{"Entrypoint":["/pause"]}').
#       index.json names the image REF (io.containerd.image.name) so that
#       `ctr -n k8s.io images import OUT.tar` tags it REF. Every blob is also linked into BLOB_DIR
#       (an OCI layout's blobs/sha256, shared by all images). Prints the index entry (manifest
#       descriptor + annotations) as one JSON line on stdout.
#
# Layers stay uncompressed (application/vnd.oci.image.layer.v1.tar): digest == diff_id, nothing
# to decompress on import, and the archives are local files anyway.
set -euo pipefail

die() { printf '[oci-pack] error: %s\n' "$*" >&2; exit 1; }

# Deterministic tar flags shared by layers and archives.
TAR_FLAGS=(--sort=name --format=gnu --numeric-owner --mtime=@0)

pack_layer() {
  local src=$1 out=$2 owner=${3:-0:0}
  [[ -d $src ]] || die "layer source $src is not a directory"
  local owner_flags=()
  if [[ $owner =~ ^[0-9]+:[0-9]+$ ]]; then
    owner_flags=(--owner="${owner%:*}" --group="${owner#*:}")
  elif [[ $owner != keep ]]; then
    die "owner must be UID:GID or keep, got '$owner'"
  fi
  chown 0:0 "$src" && chmod 0755 "$src"   # the tar's "./" entry is the container's / : root's, 0755
  tar "${TAR_FLAGS[@]}" "${owner_flags[@]}" -C "$src" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
}

# Moves or links FILE into blobs/sha256/<digest> of the work dir and prints its descriptor.
WORK=""
add_blob() { # FILE MEDIA_TYPE [keep]
  local file=$1 media=$2 digest size
  digest=$(sha256sum "$file" | cut -d' ' -f1)
  size=$(stat -c %s "$file")
  if [[ ${3:-} == keep ]]; then
    ln -f "$file" "$WORK/blobs/sha256/$digest" 2>/dev/null || cp "$file" "$WORK/blobs/sha256/$digest"
  else
    mv "$file" "$WORK/blobs/sha256/$digest"
  fi
  jq -cn --arg m "$media" --arg d "sha256:$digest" --argjson s "$size" '{mediaType:$m,digest:$d,size:$s}'
}

pack_image() {
  local out=$1 ref=$2 config=$3 blob_dir=$4
  shift 4
  [[ $# -gt 0 ]] || die "image $ref: no layers"
  [[ $ref == */*:* || $ref == */*@* ]] || die "REF must be a full reference (host/name:tag), got '$ref'"
  jq -e 'type == "object"' <<<"$config" >/dev/null 2>&1 || die "CONFIG_JSON is not a JSON object: $config"
  mkdir -p "$blob_dir"
  WORK=$(mktemp -d "$(dirname "$out")/.pack.XXXXXX")   # same file system: blobs are hard links
  trap 'rm -rf "$WORK"' RETURN
  mkdir -p "$WORK/blobs/sha256"

  local layers=() layer desc
  for layer in "$@"; do
    [[ -f $layer ]] || die "layer $layer not found"
    layers+=("$(add_blob "$layer" application/vnd.oci.image.layer.v1.tar keep)")
  done
  local layers_json diff_ids
  layers_json=$(printf '%s\n' "${layers[@]}" | jq -cs .)
  diff_ids=$(jq -c 'map(.digest)' <<<"$layers_json")

  jq -cn --argjson c "$config" --argjson d "$diff_ids" \
    '{created:"1970-01-01T00:00:00Z",architecture:"amd64",os:"linux",config:$c,rootfs:{type:"layers",diff_ids:$d}}' \
    >"$WORK/config.json"
  desc=$(add_blob "$WORK/config.json" application/vnd.oci.image.config.v1+json)
  jq -cn --argjson c "$desc" --argjson l "$layers_json" \
    '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",config:$c,layers:$l}' \
    >"$WORK/manifest.json"
  desc=$(add_blob "$WORK/manifest.json" application/vnd.oci.image.manifest.v1+json)

  local entry
  entry=$(jq -cn --argjson m "$desc" --arg ref "$ref" --arg tag "${ref##*:}" \
    '$m + {platform:{architecture:"amd64",os:"linux"},
           annotations:{"io.containerd.image.name":$ref,"org.opencontainers.image.ref.name":$tag}}')
  jq -cn --argjson e "$entry" \
    '{schemaVersion:2,mediaType:"application/vnd.oci.image.index.v1+json",manifests:[$e]}' >"$WORK/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$WORK/oci-layout"
  tar "${TAR_FLAGS[@]}" --owner=0 --group=0 -C "$WORK" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"

  local f
  for f in "$WORK"/blobs/sha256/*; do
    [[ -e $blob_dir/${f##*/} ]] || ln "$f" "$blob_dir/${f##*/}" 2>/dev/null || cp "$f" "$blob_dir/${f##*/}"
  done
  echo "$entry"
}

case ${1:-} in
  layer) [[ $# -ge 3 ]] || die "usage: oci-pack.sh layer SRC_DIR OUT.tar [UID:GID]"; pack_layer "${@:2}" ;;
  image) [[ $# -ge 6 ]] || die "usage: oci-pack.sh image OUT.tar REF CONFIG_JSON BLOB_DIR LAYER.tar..."; pack_image "${@:2}" ;;
  *) die "usage: oci-pack.sh layer|image ... (see the header of this script)" ;;
esac
