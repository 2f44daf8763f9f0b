#!/usr/bin/env bash
# deploy/docker/Dockerfile, checked without a Docker engine (none runs here or in CI): its shape
# (multi-stage on bookworm, slim runtime, non-root user, health check), its runtime packages
# against what dpkg-shlibdeps finds the built binaries need, and its build packages against
# scripts/install-deps. A real `docker build` runs only when an engine answers.
# Usage: dockerfile_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
dockerfile=$src/deploy/docker/Dockerfile
fail() { echo "Dockerfile: $*" >&2; exit 1; }

# Instructions with continuation lines joined, comments dropped.
instructions=$(sed -e '/^[[:space:]]*#/d' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
froms=$(grep -E '^FROM ' <<<"$instructions")
[ "$(wc -l <<<"$froms")" -eq 2 ] || fail "expected two stages, got: $froms"
grep -qxE 'FROM debian:bookworm AS build' <<<"$froms" || fail "build stage must be FROM debian:bookworm AS build"
[ "$(tail -n1 <<<"$froms")" = "FROM debian:bookworm-slim" ] || fail "runtime stage must be debian:bookworm-slim"
runtime=$(awk '/^FROM debian:bookworm-slim/{r=1} r' <<<"$instructions")
buildstage=$(awk '/^FROM debian:bookworm-slim/{exit} 1' <<<"$instructions")

user=$(grep -E '^USER ' <<<"$runtime" | tail -n1 | awk '{print $2}')
[ -n "$user" ] || fail "no USER in the runtime stage"
[ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || fail "runtime USER must not be root"
grep -qE '^HEALTHCHECK .*CMD .*(/healthz|tokenbrokerctl.*"health")' <<<"$runtime" ||
  fail "no HEALTHCHECK on /healthz (curl or tokenbrokerctl health)"
grep -qE '^ENTRYPOINT \["/usr/bin/tokenbrokerd"\]' <<<"$runtime" || fail "ENTRYPOINT must be tokenbrokerd"
! grep -qE '^ADD ' <<<"$instructions" || fail "use COPY, not ADD"
grep -qE '^COPY --from=build ' <<<"$runtime" || fail "the runtime stage must copy from the build stage"
! grep -E '^COPY ' <<<"$runtime" | grep -vq -- '--from=build' || fail "the runtime stage copies only build output"
grep -q 'privicore-sim' "$dockerfile" && fail "privicore-sim is a test tool, not part of the image"

apt_packages() {  # the packages of the apt-get install lines in $1
  grep -oE 'apt-get install[^&]*' <<<"$1" | sed -e 's/apt-get install//' | tr ' ' '\n' |
    grep -vE '^(-.*|)$' | sort -u
}
runtime_pkgs=$(apt_packages "$runtime")
build_pkgs=$(apt_packages "$buildstage")

# Every library the binaries link against comes from a runtime package (or from bookworm-slim's
# own essential set).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/debian" && touch "$tmp/debian/control"
needed=$(cd "$tmp" && dpkg-shlibdeps -O "$build/bin/tokenbrokerd" "$build/bin/tokenbrokerctl" 2>/dev/null |
  sed -e 's/^shlibs:Depends=//' | tr ',' '\n' | sed -e 's/(.*)//; s/[[:space:]]//g' | grep -v '^$')
in_slim="libc6 libgcc-s1 libstdc++6"
for p in $needed; do
  grep -qxF "$p" <<<"$runtime_pkgs" || grep -qw "$p" <<<"$in_slim" ||
    fail "runtime stage lacks $p (the binaries link against it)"
done
for p in $runtime_pkgs; do
  case $p in ca-certificates | curl) continue ;; esac
  grep -qxF "$p" <<<"$needed" || fail "runtime stage installs $p, which the binaries do not need"
done
# The build stage installs what scripts/install-deps lists for building.
for p in $build_pkgs; do
  grep -qw -- "$p" "$src/scripts/install-deps" || fail "build stage installs $p, unknown to scripts/install-deps"
done
for p in libboost1.81-dev libssl-dev nlohmann-json3-dev libfmt-dev prometheus-cpp-dev \
         libtomlplusplus-dev cmake ninja-build; do
  grep -qxF "$p" <<<"$build_pkgs" || fail "build stage lacks $p"
done

if docker info >/dev/null 2>&1; then
  docker build -q -f "$dockerfile" -t tokenbroker:test "$src"
  docker run --rm tokenbroker:test --version
else
  echo "no Docker engine: structure and packages checked, image not built"
fi
echo "Dockerfile: OK (runtime packages: $(tr '\n' ' ' <<<"$runtime_pkgs"))"
