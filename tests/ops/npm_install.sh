#!/usr/bin/env bash
# The npm packages of the ops checks (package.json, pinned by package-lock.json), installed with
# `npm ci` into BUILD_DIR/ops-npm: the ctest fixture ops_npm, run once before the tests using it.
# Usage: npm_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$build/ops-npm
mkdir -p "$work"
cp "$src/tests/ops/package.json" "$src/tests/ops/package-lock.json" "$work/"
cd "$work"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
echo "ops npm packages: $(node -e 'console.log(Object.entries(require("./package.json").dependencies).map(([k, v]) => k + "@" + v).join(" "))')"
