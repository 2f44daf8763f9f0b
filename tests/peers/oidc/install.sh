#!/bin/sh
# Installs the OpenID provider peer into a build tree: copies its sources and runs `npm ci`
# against the committed package-lock.json (again only when the lockfile changed).
# Usage: install.sh SOURCE_DIR DEST_DIR      (run by ctest as the fixture oidc_peer)
set -eu
src=$1
dest=$2
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$src/server.mjs" "$dest/"
want=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
stamp="$dest/node_modules/.tokenbroker-lock-sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "oidc peer: npm is missing; scripts/install-deps installs Debian's nodejs and npm" >&2
  exit 1
fi
cd "$dest"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
echo "oidc peer: installed oidc-provider into $dest"
