#!/usr/bin/env bash
# Pin the ml-api image by digest, for a release. Writes into OUT_DIR:
#   pin-image.yaml      a strategic-merge patch of the Deployment: image <IMAGE>@<DIGEST> and
#                       imagePullPolicy IfNotPresent (a digest never changes, so no re-pull)
#   kustomization.yaml  OVERLAY plus that patch: `kubectl kustomize OUT_DIR` is what the cluster
#                       runs after the release (the administrator applies it instead of the bare
#                       overlay when the configuration changes, so a re-apply keeps the release)
# The release job (.github/workflows/release.yml) renders OUT_DIR to check the digest lands in the
# Deployment, then sends only the patch: `kubectl patch --patch-file OUT_DIR/pin-image.yaml`,
# which the narrow deployer Role (deploy/k8s/bootstrap/rbac-deployer.yaml) allows.
# Usage: pin-image.sh OVERLAY IMAGE DIGEST OUT_DIR
#   e.g. pin-image.sh deploy/k8s/overlays/production docker.io/alice/ml_api sha256:<64 hex> release
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 OVERLAY IMAGE DIGEST OUT_DIR" >&2
  exit 2
fi
overlay=$1 image=$2 digest=$3 out=$4
if ! [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "$0: not an image digest: '$digest' (want sha256:<64 hex digits>)" >&2
  exit 2
fi
if ! [[ $image =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || [[ $image == *@* ]]; then
  echo "$0: not an image name: '$image' (registry/namespace/name, no tag or digest)" >&2
  exit 2
fi
mkdir -p "$out"
overlay_rel=$(realpath --relative-to="$out" "$overlay")
cat >"$out/pin-image.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ml-api-deployment
  namespace: ml-api
spec:
  template:
    spec:
      containers:
        - name: ml-api
          image: $image@$digest
          imagePullPolicy: IfNotPresent
YAML
cat >"$out/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $overlay_rel
patches:
  - path: pin-image.yaml
YAML
