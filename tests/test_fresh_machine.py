"""`make run` and `make test` on a machine that really is fresh: scripts/system-deps.sh, run in a
minimal Debian root (debootstrap --variant=minbase, the host's release and mirror), must install
Node.js, npm, Chromium and PostgreSQL, and the widget must then build there. This host has them
all already, so only a throw-away root can show that the script is enough.

The root is a tmpfs mounted in a mount and PID namespace of its own (unshare): when the test's
shell ends, its mounts, files and any process a package started there go with it, so nothing is
left to unmount or delete (and no fsync or discard of a gigabyte on disk slows it down). The script
starts as soon as the session has selected this test (tests/conftest.py): its minutes of downloads
overlap the CPU-bound tests.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROGRAMS = ["debootstrap", "unshare", "chroot"]

# Runs as PID 1 of the new namespaces: $1 mount point, $2 release codename, $3 mirror, $4 project.
# The host's resolv.conf and local CA certificates (a TLS-inspecting proxy's, say) are its network
# setup, not packages, so they go in as they are; ca-certificates adds the latter to the store.
FRESH_MACHINE = r"""
set -euo pipefail
root=$1 codename=$2 mirror=$3 project=$4
step() { echo "== ${SECONDS}s: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
in_root() { chroot "$root" /bin/sh -c "$1"; }

step "debootstrap --variant=minbase $codename into a tmpfs"
mount -t tmpfs -o size=4g,mode=755 fresh-root "$root"
debootstrap --variant=minbase "$codename" "$root" "$mirror" || fail "debootstrap from $mirror"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -d /usr/local/share/ca-certificates ]; then
  cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"  # no services: PostgreSQL would take 5432
chmod 755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/project/scripts"
cp "$project/scripts/system-deps.sh" "$root/project/scripts/"
tar -C "$project" --exclude=widget/node_modules --exclude=widget/dist -cf - widget | tar -C "$root/project" -xf -

step "the fresh root has no Node.js"
! in_root "command -v node || command -v npm" || fail "the fresh root already has Node.js, so it proves nothing"

step "scripts/system-deps.sh test"
in_root "/project/scripts/system-deps.sh test" || fail "scripts/system-deps.sh test in the fresh root"
for program in node npm chromium; do
  in_root "command -v $program" || fail "scripts/system-deps.sh did not install $program"
done
ls "$root"/usr/lib/postgresql/*/bin/postgres || fail "scripts/system-deps.sh did not install PostgreSQL's server"
for program in redis-server haproxy; do
  in_root "command -v $program || test -x /usr/sbin/$program" || fail "scripts/system-deps.sh did not install $program"
done

step "the widget builds with $(in_root 'node --version')"
in_root "cd /project/widget && npm ci --no-audit --no-fund && npm run build" || fail "the widget build"
[ -s "$root/project/widget/dist/widget.js" ] || fail "the widget build wrote no dist/widget.js"
step "a fresh machine gets what make run and make test need"
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, mount and chroot need root (CI runs as root)"),
]


def os_release() -> Dict[str, str]:
    fields = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        fields[key] = value.strip('"')
    return fields


def host_mirror(codename: str) -> str:
    """The http(s) URI the host's apt sources use for `codename` (one-line or deb822 format), so
    that no mirror is written into the project."""
    uris: List[str] = []
    for path in glob.glob("/etc/apt/sources.list") + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        for line in Path(path).read_text().splitlines():
            fields = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(fields) >= 3 and fields[0] == "deb" and fields[2] == codename:
                uris.append(fields[1])
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", Path(path).read_text()):
            stanza_fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
            enabled = stanza_fields.get("Enabled", "yes") != "no"
            if (
                enabled
                and "deb" in stanza_fields.get("Types", "").split()
                and codename in stanza_fields.get("Suites", "").split()
            ):
                uris.extend(stanza_fields.get("URIs", "").split())
    http_uris = [uri for uri in uris if uri.startswith(("http://", "https://"))]
    assert http_uris, (
        f"no http(s) apt source for {codename} in /etc/apt/sources.list(.d): the fresh-machine test "
        "debootstraps from the host's mirror, so add one"
    )
    return http_uris[0]


def mounts_under(path: Path) -> List[str]:
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    return [point for point in points if point == str(path) or point.startswith(f"{path}/")]


@dataclass
class FreshRoot:
    """The script running in its namespaces, its output going to a file."""

    root: Path
    process: subprocess.Popen
    output: Path


_started: Optional[FreshRoot] = None


def start_in_background() -> None:
    """Start the script now. It mostly waits on the network, so tests/conftest.py starts it as soon
    as a session has selected this test, and it runs beside the CPU-bound tests."""
    global _started
    if _started is not None or not all(shutil.which(p, path=SYSTEM_PATH) for p in PROGRAMS):
        return  # the test itself says what is missing
    codename = os_release().get("VERSION_CODENAME", "")
    base = Path(tempfile.mkdtemp(prefix="fresh-machine-"))
    root, output = base / "root", base / "output.log"
    root.mkdir()
    with open(output, "w") as log:
        # --kill-child: when the shell, PID 1 of the namespace, dies it takes the rest with it.
        process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation=private",
                "--pid",
                "--fork",
                "--kill-child",
                "bash",
                "-c",
                FRESH_MACHINE,
                "fresh-machine",
                str(root),
                codename,
                host_mirror(codename),
                str(ROOT),
            ],
            env={"PATH": SYSTEM_PATH, "HOME": "/root", "LANG": "C.UTF-8"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _started = FreshRoot(root, process, output)


def stop_in_background() -> None:
    """End the script if the session ends before the test waited for it (say, under -x)."""
    if _started is not None and _started.process.poll() is None:
        _started.process.kill()


def test_system_deps_make_a_fresh_machine_run_and_test() -> None:
    codename = os_release().get("VERSION_CODENAME")
    assert codename, "/etc/os-release has no VERSION_CODENAME to debootstrap"
    for program in PROGRAMS:
        assert shutil.which(program, path=SYSTEM_PATH), f"{program} is missing: `make system-deps` installs debootstrap"
    start_in_background()  # a no-op when conftest started it already
    assert _started is not None
    try:
        returncode = _started.process.wait(timeout=1200)
    except subprocess.TimeoutExpired:
        _started.process.kill()
        raise
    finally:
        left_mounted = mounts_under(_started.root)
        assert not left_mounted, f"the fresh root's mounts leaked out of their namespace: {left_mounted}"
    output = _started.output.read_text(errors="replace")
    shutil.rmtree(_started.root.parent)  # the root's tmpfs went with its namespace: an empty folder is left
    steps = "\n".join(line for line in output.splitlines() if line.startswith("== "))
    print(steps)
    assert returncode == 0, f"{steps}\n{output[-4000:]}"
