#!/usr/bin/env bash
# deploy/kubernetes: rendered with kustomize (kubectl kustomize), every resource validated against
# the Kubernetes schema with unknown fields refused (validate_kubernetes.cjs, with the npm packages
# of the ops_npm fixture), and the pod's configuration accepted by the real `tokenbrokerd --check`
# with secret files as kubelet mounts them.
# Usage: kubernetes_test.sh SOURCE_DIR BUILD_DIR   (after the ops_npm fixture)
set -euo pipefail
src=$1 build=$2
work=$build/ops-kubernetes
mkdir -p "$work"
kubectl kustomize "$src/deploy/kubernetes" >"$work/rendered.yaml"
node "$src/tests/ops/validate_kubernetes.cjs" "$work/rendered.yaml" "$build/ops-npm"

# The ConfigMap's config as the daemon sees it: secrets under $CREDENTIALS_DIRECTORY laid out as
# kubelet mounts a Secret (KEY -> ..data/KEY -> ..TIMESTAMP/KEY) and group-readable as under
# fsGroup (0440), which secret_permissions = "warn" must accept.
creds=$(mktemp -d)
trap 'rm -rf "$creds"' EXIT
mkdir "$creds/..2025_01_01_00_00_00.000000000"
ln -s ..2025_01_01_00_00_00.000000000 "$creds/..data"
for key in privicore-client-secret privicore-password; do
  printf 'not-a-real-%s' "$key" >"$creds/..data/$key"
  chmod 0440 "$creds/..data/$key"
  ln -s "..data/$key" "$creds/$key"
done
out=$(CREDENTIALS_DIRECTORY=$creds "$build/bin/tokenbrokerd" --check \
  --config "$src/deploy/kubernetes/tokenbroker.toml" 2>&1)
echo "$out"
grep -q ': OK (1 credential)' <<<"$out"
grep -q 'privicore-client-secret' <<<"$out"  # the group-readable warning names the file
echo "kubernetes manifests: OK"
