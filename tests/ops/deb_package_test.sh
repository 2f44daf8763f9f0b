#!/usr/bin/env bash
# The .deb, built by CPack from this build tree and installed for real with dpkg into a scratch
# root (its own dpkg database; maintainer scripts run chrootless with DPKG_ROOT set). Then the
# installed tokenbrokerd runs --version and --check on the installed, unmodified sample config,
# its secret handed over the way the unit's LoadCredential= does. Also: the package's contents
# and Depends, conffiles, purge, and that the man pages cover every option --help lists.
# Usage: deb_package_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
fail() { echo "deb package: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/out/tokenbroker_*.deb)
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
for f in ./usr/bin/tokenbrokerd ./usr/bin/tokenbrokerctl ./etc/tokenbroker/tokenbroker.toml \
  ./etc/tokenbroker/credentials/ ./lib/systemd/system/tokenbroker.service \
  ./lib/systemd/system/tokenbroker.socket ./usr/lib/sysusers.d/tokenbroker.conf \
  ./usr/share/man/man8/tokenbrokerd.8 ./usr/share/man/man1/tokenbrokerctl.1; do
  grep -qxF "$f" <<<"$contents" || fail "package lacks $f"
done
! grep -q 'privicore-sim' <<<"$contents" || fail "privicore-sim is a test tool and must not be packaged"
! grep -qE '^\./usr/local/' <<<"$contents" || fail "files under /usr/local"

# Depends (from dpkg-shlibdeps) name real packages in versions this system has.
depends=$(dpkg-deb -f "$deb" Depends)
grep -q 'libprometheus-cpp-core1.0' <<<"$depends" || fail "Depends lacks prometheus-cpp: $depends"
while read -r name op version; do
  have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null) || fail "Depends names $name, not installed here"
  [ -z "$op" ] || dpkg --compare-versions "$have" "$(tr -d '()' <<<"$op")" "$(tr -d '()' <<<"$version")" ||
    fail "Depends $name $op $version, this system has $have"
done < <(tr ',' '\n' <<<"$depends" | sed -e 's/^ *//; s/(\([^ ]*\) \(.*\))/\1 \2/')

root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status"
dpkg_root() { dpkg --root="$root" --force-script-chrootless --force-depends --force-not-root "$@"; }
dpkg_root -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' tokenbroker)
[ "$status" = "install ok installed" ] || fail "status: $status"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}' tokenbroker |
  grep -q '/etc/tokenbroker/tokenbroker.toml' || fail "tokenbroker.toml is not a conffile"
grep -q '^tokenbroker:' "$root/etc/passwd" || fail "postinst did not create the tokenbroker user"
[ "$(stat -c %a "$root/etc/tokenbroker/credentials")" = 700 ] || fail "credentials/ is not 0700"

version=$("$root/usr/bin/tokenbrokerd" --version)
[ "$version" = "tokenbrokerd $(sed -n 's/^project(tokenbroker VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ] ||
  fail "--version says: $version"
creds=$work/credentials
mkdir -m 0700 "$creds"
(umask 077 && printf 'not-a-real-secret' >"$creds/tokenbroker_privicore-secret")
check=$(CREDENTIALS_DIRECTORY=$creds "$root/usr/bin/tokenbrokerd" --check \
  --config "$root/etc/tokenbroker/tokenbroker.toml" 2>&1) || fail "--check failed: $check"
grep -q 'tokenbroker.toml: OK (1 credential)' <<<"$check" || fail "--check: $check"
# Without the variable the same config is refused, naming the key.
if CREDENTIALS_DIRECTORY= "$root/usr/bin/tokenbrokerd" --check --config "$root/etc/tokenbroker/tokenbroker.toml" >"$work/nocreds" 2>&1 ||
  ! grep -q 'client_secret_file: ${CREDENTIALS_DIRECTORY} is not set' "$work/nocreds"; then
  cat "$work/nocreds"; fail "--check without CREDENTIALS_DIRECTORY must fail naming the key"
fi

# Every option and command of --help is in the man page, and the reverse; versions agree.
man8=$root/usr/share/man/man8/tokenbrokerd.8 man1=$root/usr/share/man/man1/tokenbrokerctl.1
options() { grep -oE -- '--[a-z][a-z-]+' | sort -u; }
help_d=$("$root/usr/bin/tokenbrokerd" --help | options)
man_d=$(sed 's/\\-/-/g' "$man8" | options)
[ "$help_d" = "$man_d" ] || fail "tokenbrokerd options differ: --help: $(echo $help_d) / man: $(echo $man_d)"
help_c=$("$root/usr/bin/tokenbrokerctl" --help)
[ "$(options <<<"$help_c")" = "$(sed 's/\\-/-/g' "$man1" | options)" ] ||
  fail "tokenbrokerctl options differ: --help: $(options <<<"$help_c" | xargs) / man: $(sed 's/\\-/-/g' "$man1" | options | xargs)"
for cmd in $(sed -n '/^Commands:/,/^$/p' <<<"$help_c" | sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p'); do
  grep -qE "^\.BI? $cmd( |$)" "$man1" || fail "tokenbrokerctl.1 does not document the $cmd command"
done
grep -q "\"tokenbroker ${version#tokenbrokerd }\"" "$man8" "$man1" || fail "man pages carry another version"
for page in "$man8" "$man1"; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "$(basename "$page"): $warnings"
done

dpkg_root --purge tokenbroker >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge failed"; }
[ ! -e "$root/usr/bin/tokenbrokerd" ] && [ ! -e "$root/etc/tokenbroker/tokenbroker.toml" ] ||
  fail "purge left files behind"
echo "deb package: $(basename "$deb") installed into a scratch root, $version, --check OK, purged"
