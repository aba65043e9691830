#!/usr/bin/env bash
# Pin the ml-api image of the production overlay to a release, in git: what is applied is what runs.
#
# Rewrites the release component beside this script (deploy/k8s/release/), which
# deploy/k8s/overlays/production includes:
#   kustomization.yaml  the image name and tag, and the digest when given (kustomize then renders
#                       <IMAGE>@<DIGEST>)
#   pin-image.yaml      a strategic-merge patch of the Deployment: the same image, imagePullPolicy
#                       IfNotPresent once pinned by digest (a digest never changes), and the release
#                       as the app.kubernetes.io/version label of the Deployment and its pods
# The release workflow (.github/workflows/release.yml) runs this with the digest `make push`
# reported and commits the two files (a pull request); only once that commit is on main does it
# send the same patch to the cluster (`kubectl patch --patch-file deploy/k8s/release/pin-image.yaml`,
# which the narrow deployer Role allows). An administrator who later runs
# `kubectl apply -k deploy/k8s/overlays/production` from main applies that same image and digest.
#
# Usage: pin-image.sh IMAGE TAG [DIGEST]
#   e.g. pin-image.sh docker.io/alice/ml_api v1.2.3 sha256:<64 hex>
#   Without DIGEST (a first install pinned by tag) the pull policy stays Always.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 IMAGE TAG [DIGEST]" >&2
  exit 2
fi
image=$1 tag=$2 digest=${3:-}
if ! [[ $image =~ ^[a-z0-9][a-z0-9._/:-]*$ ]] || [[ $image == *@* ]]; then
  echo "$0: not an image name: '$image' (registry/namespace/name, no tag or digest)" >&2
  exit 2
fi
# A Docker tag that is also a valid label value (63 characters at most); never `latest`.
if ! [[ $tag =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]] || [ "$tag" = latest ]; then
  echo "$0: not a release tag: '$tag' (e.g. v1.2.3; never latest)" >&2
  exit 2
fi
if [ -n "$digest" ] && ! [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "$0: not an image digest: '$digest' (want sha256:<64 hex digits>)" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "$digest" ]; then
  reference="$image@$digest" policy="IfNotPresent"
else
  reference="$image:$tag" policy="Always"
fi
# Written to temporary files and moved into place, so an interrupted run leaves the old pin whole.
tmp=$(mktemp -d "$here/.pin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
{
  echo "# The release pin of the production overlay, written by pin-image.sh: do not edit by hand,"
  echo "# run deploy/k8s/release/pin-image.sh IMAGE TAG [DIGEST]. Release: $tag."
  echo "apiVersion: kustomize.config.k8s.io/v1alpha1"
  echo "kind: Component"
  echo "images:"
  echo "  - name: ml_api"
  echo "    newName: $image"
  echo "    newTag: $tag"
  if [ -n "$digest" ]; then echo "    digest: $digest"; fi
  echo "patches:"
  echo "  - path: pin-image.yaml"
} >"$tmp/kustomization.yaml"
cat >"$tmp/pin-image.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ml-api-deployment
  namespace: ml-api
  labels:
    app.kubernetes.io/version: $tag
spec:
  template:
    metadata:
      labels:
        app.kubernetes.io/version: $tag
    spec:
      containers:
        - name: ml-api
          image: $reference
          imagePullPolicy: $policy
YAML
mv "$tmp/pin-image.yaml" "$here/pin-image.yaml"
mv "$tmp/kustomization.yaml" "$here/kustomization.yaml"
echo "pinned: $reference (release $tag) in deploy/k8s/release"
