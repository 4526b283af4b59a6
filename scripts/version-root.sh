#!/usr/bin/env bash
# A Debian root of another release with its own Slurm, PCP and bpftrace, for the version
# matrix (tests/matrix).  Idempotent: a finished root is reused; an unfinished one is
# rebuilt.  Usage: scripts/version-root.sh RELEASE DIR   (RELEASE: trixie, sid, ...)
#
# Everything the root needs is installed here, once.  Nothing is started: the tests run
# the root's daemons inside their own namespaces (tests/matrix/node.py) and stop them.
set -euo pipefail
release=${1:?release (e.g. trixie, sid)}
root=${2:?directory}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
stamp="$root/.pcp-hpc-root"

PACKAGES=(
  slurm-wlm slurm-client munge                         # the release's Slurm
  pcp python3-pcp                                      # the release's pmcd, pmproxy and bindings
  python3-yaml python3-click python3-clustershell      # what pcp-hpc needs on a node
  bpftrace                                             # the release's bpftrace
  redis-server                                         # pmproxy's series store
  procps iproute2                                      # ps, ip (loopback in the namespace)
)

log() { printf '[version-root %s] %s\n' "$release" "$*"; }

if [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "${PACKAGES[*]}" ]; then
  log "reusing $root"
  exit 0
fi

command -v debootstrap >/dev/null || { apt-get install -y -q --no-install-recommends debootstrap; }

# sid's Release file can read as expired against this machine's clock.
apt_opts=(-o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -y -q)

rm -rf "$root.new"
mkdir -p "$(dirname "$root")"
log "debootstrap into $root.new"
debootstrap --variant=minbase "$release" "$root.new" "$mirror" >"$root.new.log" 2>&1 \
  || { tail -20 "$root.new.log" >&2; exit 1; }

# No daemon starts at install time (policy-rc.d), and PCP's scripts find a no-op systemctl.
printf '#!/bin/sh\nexit 101\n' >"$root.new/usr/sbin/policy-rc.d"
chmod +x "$root.new/usr/sbin/policy-rc.d"
mkdir -p "$root.new/usr/local/sbin"
printf '#!/bin/sh\nexit 0\n' >"$root.new/usr/local/sbin/systemctl"
chmod +x "$root.new/usr/local/sbin/systemctl"
cp /etc/resolv.conf "$root.new/etc/resolv.conf"

in_root() { chroot "$root.new" env DEBIAN_FRONTEND=noninteractive \
              PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
log "installing ${PACKAGES[*]}"
in_root apt-get "${apt_opts[@]}" update >>"$root.new.log" 2>&1
in_root apt-get "${apt_opts[@]}" install "${PACKAGES[@]}" >>"$root.new.log" 2>&1 \
  || in_root dpkg --configure -a >>"$root.new.log" 2>&1
for p in "${PACKAGES[@]}"; do
  in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || { echo "version-root.sh: $p did not install in $release" >&2; tail -20 "$root.new.log" >&2; exit 1; }
done
in_root apt-get clean

{
  echo "${PACKAGES[*]}"
  in_root dpkg-query -W -f='${Package} ${Version}\n' slurm-wlm pcp bpftrace python3
} >"$root.new/.pcp-hpc-root"
rm -rf "$root"
mv "$root.new" "$root"
mv "$root.new.log" "$root.log"
log "ready: $(tr '\n' ' ' <"$stamp" | cut -d' ' -f$((${#PACKAGES[@]} + 1))-)"
