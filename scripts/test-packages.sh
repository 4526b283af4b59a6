#!/usr/bin/env bash
# Test the packages, not the checkout (run by `make test` after pytest; root, pmcd running).
#
# 1. Build the sdist, wheel and .deb from this tree (scripts/build-deb.sh).
# 2. The .deb: `apt-get install ./pcp-hpc_*.deb`; a copy of tests/ outside the checkout runs
#    the chosen agent tests with /usr/bin/python3 (its conftest refuses to start if pmdas or
#    hpc_pcp import from the checkout); `hpc-pcp install --all` then `hpc-pcp status` must show
#    every agent healthy; `apt-get purge pcp-hpc` must leave pmcd serving PCP's own agents,
#    no hpc name in the PMNS and no file of ours.
# 3. The wheel: into a virtual env outside the checkout (/opt/pcp-hpc-ci, from /usr/bin/python3
#    with the system site packages, whose Debian packages provide the dependencies); the
#    same tests with its python; the env removed.
# The machine is left as before: pcp-hpc agents pmcd ran at the start (say, the demo's) are
# put back from a copy of their directories.
#
#   scripts/test-packages.sh        KEEP=1 keeps the work directory for a look afterwards
set -euo pipefail
umask 022

HERE=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/bin:/bin:/usr/sbin:/sbin:/usr/lib/pcp/bin:$PATH DEBIAN_FRONTEND=noninteractive
VENV=/opt/pcp-hpc-ci
APT_OPTS="-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"   # never a question
TESTS=(
  tests/packaging/test_installed.py                   # shipped data found, launch checks pass
  tests/hpcib/test_pcp.py                             # an agent on a fixture tree through pmcd
  tests/pcp/test_launch_isolation.py                  # code planted in pmcd's directory never runs
  tests/pcp/test_sample_agent.py::test_metrics_values_and_help_through_pmcd
  tests/pcp/test_sample_agent.py::test_status_command_reports_health
  tests/pcp/test_sample_agent.py::test_need_install_marker_loads_agent_at_pmcd_start_and_remove_is_selective
  tests/alarms/test_agent.py
)
START=$(date +%s)
log() { printf '[test-packages %3ds] %s\n' "$(( $(date +%s) - START ))" "$*"; }
fail() { echo "test-packages.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (installs the package and agents into pmcd)"
pminfo -f pmcd.version >/dev/null 2>&1 || fail "pmcd is not running: run scripts/setup-node.sh"
/usr/bin/python3 -c 'import pytest' 2>/dev/null || fail "python3-pytest is missing: run scripts/setup-node.sh"
installed() { dpkg -s pcp-hpc >/dev/null 2>&1; }    # in any state dpkg knows, half-installed too
installed && fail "pcp-hpc is installed already: this test installs and purges it"
[ ! -e "$VENV" ] || fail "$VENV exists: left by an earlier run? remove it"

set +u; . /etc/pcp.env; set -u     # pcp.env reads unset variables
WORK=$(mktemp -d /tmp/pcp-hpc-packages.XXXXXX)
chmod 755 "$WORK"          # agents that drop to the pcp user read the copied fixture trees
AGENTS=$(cd "$HERE" && .venv/bin/python -c 'from pmdas.agents import AGENTS; print(*AGENTS)' 2>/dev/null \
         || /usr/bin/python3 -c 'import sys; sys.path.insert(0, "'"$HERE"'"); from pmdas.agents import AGENTS; print(*AGENTS)')
loaded_agents() { awk '/^\[/ {exit} /^[^#]/ && NF {print $1}' "$PCP_PMCDCONF_PATH"; }
ours() { loaded_agents | grep -xF -f <(tr ' ' '\n' <<<"$AGENTS") || true; }

# What ran before: PCP's agents, and ours (the demo's?) with their directories.
BEFORE_PCP=$(loaded_agents | { grep -vxF -f <(tr ' ' '\n' <<<"$AGENTS") || true; } | sort)
BEFORE_OURS=$(ours)
for agent in $BEFORE_OURS; do cp -a "$PCP_PMDAS_DIR/$agent" "$WORK/before-$agent"; done
# The site's agent configurations (or the demo's): the package must leave them alone.
site_configs() {
  { find "$PCP_SYSCONF_DIR/hpc" -maxdepth 1 -type f -name '*.yaml' -exec md5sum {} + 2>/dev/null || true; } | sort
}
BEFORE_CONFIGS=$(site_configs)

restore() {
  local rc=$?
  set +e
  installed && apt-get purge -y -q pcp-hpc >/dev/null 2>&1
  rm -rf "$VENV"
  for agent in $(ours); do    # an agent this run started with its settings under $WORK
    grep -q "^$agent[[:space:]].*$WORK/" "$PCP_PMCDCONF_PATH" || continue
    (cd "$PCP_PMDAS_DIR/$agent" && HPC_PCP_DIRECT=1 ./Remove </dev/null >/dev/null 2>&1)
  done
  for agent in $BEFORE_OURS; do
    mkdir -p "$PCP_PMDAS_DIR/$agent" && cp -a "$WORK/before-$agent/." "$PCP_PMDAS_DIR/$agent/"
    (cd "$PCP_PMDAS_DIR/$agent" && HPC_PCP_DIRECT=1 ./Install </dev/null >/dev/null 2>&1) \
      || echo "test-packages.sh: could not put $agent back: run $PCP_PMDAS_DIR/$agent/Install" >&2
  done
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
  log "done, exit $rc"
  exit $rc
}
trap restore EXIT

# Leave pmcd with none of our agents, so that "only PCP's agents remain" is checkable.
for agent in $BEFORE_OURS; do
  (cd "$PCP_PMDAS_DIR/$agent" && HPC_PCP_DIRECT=1 ./Remove </dev/null >/dev/null 2>&1) || true
done

run_suite() {  # python, label
  local python=$1 label=$2
  rm -rf "$WORK/suite" && mkdir -p "$WORK/suite"
  cp -a "$HERE/tests" "$WORK/suite/tests"
  find "$WORK/suite" -name __pycache__ -prune -exec rm -rf {} +
  cp "$HERE/tests/packaging/installed_conftest.py" "$WORK/suite/tests/conftest.py"
  printf '[pytest]\nmarkers =\n    pcp: needs a running pmcd\n    services: needs real services\n    root: needs root\n' \
    > "$WORK/suite/pytest.ini"
  log "$label: ${#TESTS[@]} test selections with $python"
  (cd "$WORK/suite" && HPC_PCP_CHECKOUT=$HERE "$python" -m pytest -q -p no:cacheprovider -p no:randomly \
     -W ignore::pytest.PytestUnknownMarkWarning "${TESTS[@]}") \
    || fail "$label: the agent tests failed against the installed package"
}

# 1. Build.
bash "$HERE/scripts/build-deb.sh" "$WORK/dist" | sed 's/^/  /'
DEB=$(ls "$WORK"/dist/pcp-hpc_*_all.deb)
WHEEL=$(ls "$WORK"/dist/pcp_hpc-*.whl)

# 2. The Debian package.
log "apt-get install $DEB"
apt-get install -y -q --no-install-recommends $APT_OPTS "$DEB" >"$WORK/apt-install.log" 2>&1 \
  || { cat "$WORK/apt-install.log" >&2; fail "apt-get install of the .deb failed"; }
dpkg-query -L pcp-hpc | sort > "$WORK/deb-files"
/usr/bin/python3 -I -c 'import pmdas, hpc_pcp, sys
for m in (pmdas, hpc_pcp):
    assert m.__file__.startswith("/usr/lib/python3/dist-packages/"), m.__file__' \
  || fail "the system Python does not import the packaged code"
[ "$(head -1 /usr/bin/hpc-pcp)" = "#!/usr/bin/python3 -I" ] || fail "/usr/bin/hpc-pcp does not run python3 -I"
/usr/bin/hpc-pcp agents >/dev/null || fail "/usr/bin/hpc-pcp agents failed"
run_suite /usr/bin/python3 ".deb"

# Every agent installed on sources that work on this machine (as a site ships its
# /etc/pcp/hpc/<agent>.yaml; given here with -c, so the site's or the demo's files stay).
log ".deb: every agent installed by the package's hpc_pcp, then hpc-pcp status"
S=$WORK/status && mkdir -p "$S/dtn-runs" "$S/alarms" "$S/sample" "$S/bpftrace" && echo 1 > "$S/sample/files"
FIX=$WORK/suite/tests/fixtures
cat > "$S/configs.yaml" <<CONFIGS
hpcjob: {scheduler: slurm, squeue_command: [/bin/true], interval: 2,
         scontrol_command: [/bin/sh, -c, "echo PrivateData = none; echo SlurmUser = slurm", sh]}
hpclustre: {root: $FIX/lustre/v2_15/client, interval: 2}
hpcib: {root: $FIX/ib/mlx5, interval: 2}
hpcbpftrace: {script_dir: $S/bpftrace, enabled: [], interval: 2}
hpcdtn: {runs_directory: $S/dtn-runs, interval: 2}
hpcalarm: {directory: $S/alarms, interval: 2}
hpcsample: {directory: $S/sample, interval: 2}
CONFIGS
/usr/bin/python3 -I "$HERE/tests/packaging/install_all.py" "$S" $AGENTS >"$WORK/install-all.log" 2>&1 \
  || { cat "$WORK/install-all.log" >&2; fail "installing every agent from the package failed"; }
status_ok() {
  /usr/bin/hpc-pcp status >"$WORK/status.log" 2>&1 || return 1
  [ "$(grep -c ' healthy ' "$WORK/status.log")" = "$(wc -w <<<"$AGENTS")" ]
}
for _ in $(seq 1 60); do status_ok && break; sleep 1; done
sed 's/^/  /' "$WORK/status.log"
status_ok || fail "hpc-pcp status does not show every agent healthy"

log ".deb: the same package again, as an upgrade: the loaded agents restart on it"
apt-get install -y -q --reinstall --no-install-recommends $APT_OPTS "$DEB" >"$WORK/apt-upgrade.log" 2>&1 \
  || { cat "$WORK/apt-upgrade.log" >&2; fail "reinstalling the .deb failed"; }
[ "$(ours | sort)" = "$(tr ' ' '\n' <<<"$AGENTS" | sort)" ] || fail "an upgrade dropped agents from pmcd"
# The upgrade put back the packaged Install (no -c): the agents now read /etc/pcp/hpc, so
# on this machine they may be degraded, but every one must answer.
answering() {
  /usr/bin/hpc-pcp status >"$WORK/status.log" 2>&1
  ! grep -q "NOT ANSWERING" "$WORK/status.log" \
    && [ "$(grep -cE ' (healthy|DEGRADED) ' "$WORK/status.log")" = "$(wc -w <<<"$AGENTS")" ]
}
for _ in $(seq 1 60); do answering && break; sleep 1; done
answering || { cat "$WORK/status.log" >&2; fail "after an upgrade not every agent answers"; }

log ".deb: apt-get purge pcp-hpc"
apt-get purge -y -q pcp-hpc >"$WORK/apt-purge.log" 2>&1 \
  || { cat "$WORK/apt-purge.log" >&2; fail "apt-get purge pcp-hpc failed"; }
left=$(ours)
[ -z "$left" ] || fail "after purge pmcd.conf still names: $left"
after_pcp=$(loaded_agents | sort)
[ "$after_pcp" = "$BEFORE_PCP" ] || fail "PCP's agents changed: before [$BEFORE_PCP] after [$after_pcp]"
status=$(pminfo -f pmcd.agent.status) || fail "pmcd does not answer after purge"
grep -q '"hpc' <<<"$status" && fail "pmcd.agent.status still lists an hpc agent"
bad=$(awk '/inst \[/ && $NF != 0' <<<"$status")
[ -z "$bad" ] || fail "an agent of PCP's is unhealthy after purge: $bad"
pminfo hpc >/dev/null 2>&1 && fail "the PMNS still has hpc names after purge"
for path in $(cat "$WORK/deb-files"); do
  case $path in /.|/usr|/usr/bin|/usr/lib|/usr/lib/python3|/usr/lib/python3/dist-packages|/usr/share|\
    /usr/share/doc|/var|/var/lib|/var/lib/pcp|/var/lib/pcp/pmdas|/etc|/etc/pcp) continue ;; esac
  [ ! -e "$path" ] || fail "purge left $path"
done
for agent in $AGENTS; do
  [ ! -e "$PCP_PMDAS_DIR/$agent" ] || fail "purge left $PCP_PMDAS_DIR/$agent"
  [ ! -e "$PCP_LOG_DIR/pmcd/$agent.log" ] || fail "purge left $PCP_LOG_DIR/pmcd/$agent.log"
done
[ "$(site_configs)" = "$BEFORE_CONFIGS" ] || fail "the site's $PCP_SYSCONF_DIR/hpc/*.yaml changed"
for top in pmdas hpc_pcp dtn_transfer; do
  [ ! -e "/usr/lib/python3/dist-packages/$top" ] || fail "purge left /usr/lib/python3/dist-packages/$top"
done
log ".deb: purged; pmcd serves PCP's agents only ($(wc -w <<<"$after_pcp")), no file of ours left"

# 3. The wheel in a virtual env outside the checkout.
log "wheel: $VENV"
/usr/bin/python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-index --no-deps "$WHEEL"
"$VENV/bin/python" -I -c 'import importlib.metadata as md, re
for req in md.requires("pcp-hpc"):
    if "extra ==" not in req:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
        print(name, md.version(name))' | sed 's/^/  dependency /' \
  || fail "a dependency of the wheel is missing from the Debian packages"
"$VENV/bin/pip" check --disable-pip-version-check 2>&1 | grep -i "pcp-hpc" \
  && fail "pip check: the wheel's dependencies are not met"
run_suite "$VENV/bin/python" "wheel"
left=$(ours)
[ -z "$left" ] || fail "the wheel's tests left agents in pmcd: $left"
log "packages tested"
