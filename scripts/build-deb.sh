#!/usr/bin/env bash
# Build pcp-hpc's packages from this tree into OUTDIR (default dist/):
#   pcp-hpc-<version>.tar.gz           the source distribution
#   pcp_hpc-<version>-py3-none-any.whl the wheel, built from that sdist (so both are complete)
#   pcp-hpc_<version>_all.deb          the Debian package for nodes, laid out from the wheel
#                                      by packaging/stage.py (no demo, no lab, no PyPI)
# Needs the system Python with setuptools, wheel and pip, python3-pcp, python3-yaml,
# python3-click and python3-clustershell (the agents are imported to write their
# directories), and dpkg-deb.  No network.
#
#   scripts/build-deb.sh [OUTDIR]
set -euo pipefail
umask 022       # packaged files and directories writable by root alone (check_launch)

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$HERE/dist}" && cd "${1:-$HERE/dist}" && pwd)
PY=/usr/bin/python3
VERSION=$(cd "$HERE" && "$PY" setup.py -q --version 2>/dev/null)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
log() { printf '[build-deb] %s\n' "$*"; }

# 1. sdist from the tree, wheel from the unpacked sdist (proves MANIFEST.in is complete).
(cd "$HERE" && "$PY" setup.py -q sdist -d "$WORK/sdist" >"$WORK/sdist.log" 2>&1) \
  || { cat "$WORK/sdist.log" >&2; exit 1; }
tar -C "$WORK" -xzf "$WORK/sdist/pcp-hpc-$VERSION.tar.gz"
(cd "$WORK/pcp-hpc-$VERSION" && "$PY" -m pip wheel -q --disable-pip-version-check --no-deps \
   --no-build-isolation --no-index -w "$WORK/wheel" . >"$WORK/wheel.log" 2>&1) \
  || { cat "$WORK/wheel.log" >&2; exit 1; }
WHEEL=$WORK/wheel/pcp_hpc-$VERSION-py3-none-any.whl
cp "$WORK/sdist/pcp-hpc-$VERSION.tar.gz" "$WHEEL" "$OUT/"
log "sdist and wheel: $OUT/pcp-hpc-$VERSION.tar.gz $OUT/$(basename "$WHEEL")"

# 2. The Debian package's tree, from the wheel.
"$PY" -m zipfile -e "$WHEEL" "$WORK/unpacked"
STAGING=$WORK/staging
# Under a non-root build, fakeroot lets check_launch see the staged code as root's.
FAKEROOT=$([ "$(id -u)" = 0 ] || echo fakeroot)
AGENTS=$($FAKEROOT "$PY" -I -B "$HERE/packaging/stage.py" "$WORK/unpacked" "$STAGING" | tr '\n' ' ')
AGENTS=${AGENTS% }
[ -n "$AGENTS" ] || { echo "build-deb.sh: no agents staged" >&2; exit 1; }
install -d "$STAGING/usr/share/doc/pcp-hpc"
install -m 644 "$HERE/README.md" "$STAGING/usr/share/doc/pcp-hpc/README.md"

# 3. Control files: the agent list goes into the maintainer scripts, every file under
#    /etc is a conffile (the example agent configurations).
install -d "$STAGING/DEBIAN"
SIZE=$(du -sk --exclude=DEBIAN "$STAGING" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$SIZE/" "$HERE/packaging/debian/control.in" \
  > "$STAGING/DEBIAN/control"
for script in postinst prerm postrm; do
  sed -e "s/@AGENTS@/$AGENTS/" "$HERE/packaging/debian/$script" > "$STAGING/DEBIAN/$script"
  chmod 755 "$STAGING/DEBIAN/$script"
done
(cd "$STAGING" && find etc -type f | sort | sed 's|^|/|') > "$STAGING/DEBIAN/conffiles"
DEB=$OUT/pcp-hpc_${VERSION}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGING" "$DEB" >/dev/null
log "Debian package: $DEB (agents: $AGENTS)"
