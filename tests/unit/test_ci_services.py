"""scripts/ci-services.sh, which .ci/run calls before `make test`, on a simulated machine: a PATH of
links to this machine's commands minus promtool, prometheus-alertmanager and chromium, with apt-get,
pg_isready and pg_ctlcluster replaced by stubs that record their arguments. Nothing is installed,
started or stopped on the real machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ci-services.sh"
PACKAGE_COMMANDS = {"prometheus": "promtool", "prometheus-alertmanager": "prometheus-alertmanager",
                    "chromium": "chromium"}  # fmt: skip
STUBBED = {
    "apt-get",
    "apt",
    "pg_isready",
    "pg_ctlcluster",
    "pkill",
    "killall",
    *PACKAGE_COMMANDS.values(),
}


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


class Machine:
    """A bin directory standing in for a machine; ``calls`` is what the stubs recorded."""

    def __init__(
        self, tmp: Path, *, installed: bool, postgres_up: bool, apt_installs: bool = True
    ) -> None:
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.calls = tmp / "calls"
        self.calls.touch()
        self.pg_up = tmp / "pg_up"
        self.clusters = tmp / "etc-postgresql"
        (self.clusters / "15").mkdir(parents=True)
        for d in os.environ["PATH"].split(os.pathsep):
            if not os.path.isdir(d):
                continue
            for entry in os.listdir(d):
                target = self.bin / entry
                if entry not in STUBBED and not target.exists():
                    target.symlink_to(os.path.join(d, entry))
        if installed:
            for command in PACKAGE_COMMANDS.values():
                _write(self.bin / command, "#!/bin/sh\nexit 0\n")
        if postgres_up:
            self.pg_up.touch()
        record = f'echo "$(basename "$0") $*" >> "{self.calls}"\n'
        # apt-get's stub "installs" a package by putting a stub of its command on PATH.
        install = "".join(
            f'  {package}) printf "#!/bin/sh\\nexit 0\\n" > "{self.bin / command}"; '
            f'chmod +x "{self.bin / command}";;\n'
            for package, command in PACKAGE_COMMANDS.items()
        )
        loop = f'for p in "$@"; do case "$p" in\n{install}esac; done\n'
        apt = f'#!/bin/sh\n{record}[ "$1" = install ] || exit 0\n{loop}'
        _write(self.bin / "apt-get", apt if apt_installs else f"#!/bin/sh\n{record}exit 0\n")
        _write(self.bin / "pg_isready", f'#!/bin/sh\n{record}test -e "{self.pg_up}"\n')
        _write(self.bin / "pg_ctlcluster", f'#!/bin/sh\n{record}touch "{self.pg_up}"\n')
        for name in ("pkill", "killall"):
            _write(self.bin / name, f"#!/bin/sh\n{record}exit 1\n")

    def run(self) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        env = {"PATH": str(self.bin), "HOME": os.environ.get("HOME", "/tmp"),
               "PG_CLUSTERS_DIR": str(self.clusters)}  # fmt: skip
        bash = shutil.which("bash")
        assert bash is not None
        proc = subprocess.run(
            [bash, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
        )
        return proc, [
            line
            for line in self.calls.read_text().splitlines()
            if not line.startswith("pg_isready")
        ]


def test_a_new_machine_gets_its_packages_installed_and_nothing_stopped(tmp_path: Path) -> None:
    machine = Machine(tmp_path, installed=False, postgres_up=True)
    proc, calls = machine.run()
    assert proc.returncode == 0, proc.stderr
    assert calls[0] == "apt-get update -qq"
    assert calls[1].split()[:4] == ["apt-get", "install", "-y", "-qq"]
    assert set(calls[1].split()[4:]) == set(PACKAGE_COMMANDS)
    assert len(calls) == 2  # no pkill, no killall, no pg_ctlcluster


def test_a_machine_that_has_everything_installs_nothing(tmp_path: Path) -> None:
    proc, calls = Machine(tmp_path, installed=True, postgres_up=True).run()
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    assert "all present" in proc.stdout


@pytest.mark.parametrize("missing", sorted(PACKAGE_COMMANDS))
def test_only_the_missing_package_is_installed(tmp_path: Path, missing: str) -> None:
    machine = Machine(tmp_path, installed=True, postgres_up=True)
    (machine.bin / PACKAGE_COMMANDS[missing]).unlink()
    proc, calls = machine.run()
    assert proc.returncode == 0, proc.stderr
    assert calls[-1].split()[4:] == [missing]


def test_postgres_down_is_started_with_its_cluster(tmp_path: Path) -> None:
    proc, calls = Machine(tmp_path, installed=True, postgres_up=False).run()
    assert proc.returncode == 0, proc.stderr
    assert calls == ["pg_ctlcluster --skip-systemctl-redirect 15 main start"]


def test_an_install_that_leaves_a_command_missing_is_reported(tmp_path: Path) -> None:
    """CI goes on to the tests (each needing the service then fails and names it), but says why."""
    proc, calls = Machine(tmp_path, installed=False, postgres_up=True, apt_installs=False).run()
    assert proc.returncode == 0
    assert "still missing after install" in proc.stderr
    reported = proc.stderr.split("still missing after install:")[1].split()
    assert sorted(reported) == sorted(PACKAGE_COMMANDS)


def test_ci_run_calls_the_script_and_stops_nothing_by_name() -> None:
    text = (ROOT / ".ci" / "run").read_text()
    assert "scripts/ci-services.sh" in text
    assert "make test" in text
    for word in ("pkill", "killall"):
        assert word not in text and word not in SCRIPT.read_text()
