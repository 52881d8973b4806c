"""The pinned environment: requirements.lock, pyproject.toml and environment.yml agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
#: conda-forge names of packages whose PyPI name differs.
CONDA_TO_PIP = {"pytorch": "torch"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock: expected NAME==VERSION, got {line!r}"
        pins[_norm(name)] = version.strip()
    return pins


def read_environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        specs = dep["pip"] if isinstance(dep, dict) else [dep]
        for spec in specs:
            m = re.match(r"^([A-Za-z0-9_.\-]+)\s*==?\s*([0-9][^=\s]*)", spec)
            if m:
                name = CONDA_TO_PIP.get(m.group(1), m.group(1))
                pins[_norm(name)] = m.group(2).rstrip("*").rstrip(".")
    return pins


def direct_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        if extra != "bench":
            specs += [s for s in items if not s.startswith("coursekit")]
    return {_norm(re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0]) for s in specs}


def test_torch_is_pinned_to_the_tested_cpu_release():
    assert read_lock()["torch"] == "2.13.0"


def test_every_direct_dependency_is_pinned_in_the_lock():
    lock = read_lock()
    missing = sorted(direct_dependencies() - lock.keys())
    assert not missing, f"requirements.lock lacks pins for {missing}"


def test_environment_yml_agrees_with_the_lock():
    lock, env = read_lock(), read_environment()
    assert env, "environment.yml pins nothing"
    missing = sorted(direct_dependencies() - env.keys() - {"python"})
    assert not missing, f"environment.yml lacks pins for {missing}"
    differ = {n: (v, lock.get(n)) for n, v in env.items() if n != "python" and lock.get(n) != v}
    assert not differ, f"environment.yml and requirements.lock differ (env, lock): {differ}"


def test_environment_yml_is_conda_forge_python_311_with_editable_install():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(s.startswith("-e ") for s in pip_section)
