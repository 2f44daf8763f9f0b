#!/usr/bin/env bash
# systemd/tokenbroker.{service,socket} as `cmake --install --prefix /usr` lays them out: checked by
# `systemd-analyze verify` (which must print nothing: it only warns about unknown or unparsable
# settings) and rated by `systemd-analyze security --offline=yes`, which must give an exposure of
# 2.0 or better. Both run against a scratch root, so no running systemd is needed; the root gets
# the host's own units for the dependencies (sysinit.target, ...), the installed binary and the
# host's /bin/kill (ExecReload=), which verify checks are executable.
# Usage: systemd_units_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
fail() { echo "systemd units: $*" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null
units=$root/lib/systemd/system
[ -f "$units/tokenbroker.service" ] && [ -f "$units/tokenbroker.socket" ] || fail "units not installed in /lib/systemd/system"
mkdir -p "$root/usr/lib/systemd/system"
cp -a /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
install -D -m 0755 /bin/kill "$root/bin/kill"

for unit in tokenbroker.service tokenbroker.socket; do
  # MANPATH: Documentation=man:... must name the installed man pages.
  out=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" --man=yes "$unit" 2>&1) ||
    fail "verify $unit failed: $out"
  [ -z "$out" ] || fail "verify $unit: $out"
done

rating=$(systemd-analyze security --offline=yes --root="$root" --threshold=20 \
  tokenbroker.service 2>&1) || fail "security: exposure above 2.0 (or analysis failed):
$rating"
exposure=$(sed -n 's/.*Overall exposure level for tokenbroker.service: \([0-9.]*\).*/\1/p' <<<"$rating")
[ -n "$exposure" ] || fail "no exposure level in: $rating"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure $exposure > 2.0"

# Settings the design relies on (a rating can stay low while one of these is lost).
service=$units/tokenbroker.service
for setting in Type=notify WatchdogSec= User=tokenbroker RuntimeDirectory=tokenbroker \
  StateDirectory=tokenbroker ConfigurationDirectory=tokenbroker \
  LoadCredential=tokenbroker:/etc/tokenbroker/credentials ProtectSystem=strict \
  "CapabilityBoundingSet=$" "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" \
  SystemCallFilter=@system-service MemoryDenyWriteExecute=yes "ExecStart=/usr/bin/tokenbrokerd "; do
  grep -qE "^$setting" "$service" || fail "tokenbroker.service lacks $setting"
done
! grep -qE '^(PrivateNetwork|IPAddressDeny|PrivateUsers)=' "$service" ||
  fail "PrivateNetwork/IPAddressDeny would cut the upstreams off; PrivateUsers would hide client uids"
grep -q '^ListenStream=/run/tokenbroker/tokenbroker.sock' "$units/tokenbroker.socket" ||
  fail "tokenbroker.socket does not listen on the default socket"
# The sample config names its secrets through the unit's LoadCredential= ID.
grep -q '^client_secret_file = "${CREDENTIALS_DIRECTORY}/tokenbroker_' "$root/etc/tokenbroker/tokenbroker.toml" ||
  fail "the sample config does not read its secret from \$CREDENTIALS_DIRECTORY"
echo "systemd units: verify clean, exposure $exposure"
