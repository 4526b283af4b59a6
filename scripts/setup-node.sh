#!/usr/bin/env bash
# Set up this Debian 12 machine as a pcp-hpc node: system packages, the Python
# virtual environment, and pmcd running.  Idempotent: running it twice is harmless.
#
#   scripts/setup-node.sh            packages + venv + pmcd
#   scripts/setup-node.sh --logger   also Redis, pmlogger and pmproxy (logger node)
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
VENV=${HPC_PCP_VENV:-$HERE/.venv}
WITH_LOGGER=0
for arg in "$@"; do
  case $arg in
    --logger) WITH_LOGGER=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup-node.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  pcp pcp-conf python3-pcp python3-venv python3-yaml   # PCP and the system Python's bindings
  python3-clustershell python3-click                   # node sets (NodeSet), the commands' CLI
  redis-server                                          # pmproxy's time-series store (logger node)
  python3-redis python3-hiredis                         # the series index's Valkey/Redis client (logger node)
  bpftrace                                              # kernel scripts (hpcbpftrace)
  slurm-wlm munge                                       # a local one-node Slurm (hpcjob tests, demo)
  libslurm-perl                                         # Slurm API for PCP's stock slurm agent (bench/slurm_stock.py)
  globus-gridftp-server-progs globus-gass-copy-progs    # GridFTP servers and client (dtn-transfer)
  globus-simple-ca globus-proxy-utils globus-gsi-cert-utils-progs  # GSI: CA, proxies, cert tools (testbed)
  iproute2 procps psmisc                                # namespaces, tc, process tools
  python3-pytest                                        # tests against the installed packages (scripts/test-packages.sh)
  debootstrap                                           # other Debian releases' roots (version matrix, scripts/version-root.sh)
)

log() { printf '[setup] %s\n' "$*"; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# PCP's post-install scripts call systemctl, which fails without systemd.  A no-op
# systemctl first on PATH lets dpkg finish; daemons are started with init scripts.
FAKE_SYSTEMD=$(mktemp -d)
trap 'rm -rf "$FAKE_SYSTEMD"' EXIT
printf '#!/bin/sh\nexit 0\n' > "$FAKE_SYSTEMD/systemctl"
chmod +x "$FAKE_SYSTEMD/systemctl"
export PATH="$FAKE_SYSTEMD:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}" || log "apt-get reported errors; finishing configuration"
  dpkg --configure -a
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || { echo "setup-node.sh: package $p did not install" >&2; exit 1; }
  done
else
  log "system packages present"
fi

# The virtual env comes from the system Python, with its site packages, so that
# the distribution's PCP bindings import; the rest comes from PyPI.
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pcp.pmda' 2>/dev/null; then
  log "creating virtual environment $VENV"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -e "$HERE[test,lab]"

# Kernel filesystems bpftrace and debugfs-based sources need.
mountpoint -q /sys/kernel/tracing 2>/dev/null || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/kernel/debug 2>/dev/null || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true

start_service() {  # name, check command
  local name=$1; shift
  if "$@" >/dev/null 2>&1; then log "$name running"; return; fi
  log "starting $name"
  /etc/init.d/"$name" start >/dev/null 2>&1 || /etc/init.d/"$name" restart >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do "$@" >/dev/null 2>&1 && return; sleep 1; done
  echo "setup-node.sh: $name did not start" >&2; exit 1
}

start_service pmcd pminfo -f pmcd.version
if [ "$WITH_LOGGER" = 1 ]; then
  start_service redis-server redis-cli ping
  grep -q '^\[redis\]' /etc/pcp/pmproxy/pmproxy.conf 2>/dev/null || true
  start_service pmproxy pminfo -h localhost -f pmproxy.pid
  /etc/init.d/pmlogger start >/dev/null 2>&1 || true
fi
log "done: $("$VENV/bin/hpc-pcp" --help >/dev/null && echo 'hpc-pcp ready')"
