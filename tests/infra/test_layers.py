"""The two layers hold what the handlers import at run time, built from the runtime set of the lock only."""

from __future__ import annotations

import re
import tomllib
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hub.settings import FUNCTION_SETTINGS
from tests.infra.conftest import require_layers
from tests.infra.imports import RUNTIME_PROVIDED, ImportGraph
from tests.infra.stack_view import ROOT

LAYERS = ROOT / "build" / "layers"
DEPS = LAYERS / "deps" / "python"
HUB = LAYERS / "hub" / "python"
# The Lambda target the deps layer is built for (local/build_layer.py).
TARGET = {
    **default_environment(),
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "extra": "",
}
RUNTIME_DISTRIBUTIONS = {"boto3", "botocore", "s3transfer"}


@pytest.fixture(scope="module", autouse=True)
def _layers_built() -> None:
    require_layers()


def _distributions() -> dict[str, tuple[str, list[str]]]:
    """Installed in the deps layer: canonical name -> (version, Requires-Dist)."""
    found = {}
    for metadata in DEPS.glob("*.dist-info/METADATA"):
        headers = Parser().parsestr(metadata.read_text(encoding="utf-8"), headersonly=True)
        found[canonicalize_name(headers["Name"])] = (
            headers["Version"],
            headers.get_all("Requires-Dist") or [],
        )
    return found


def _lock_pins() -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if match:
            pins.setdefault(canonicalize_name(match.group(1)), set()).add(match.group(2))
    return pins


def test_hub_layer_is_a_fresh_copy_of_layers_hub() -> None:
    source = ROOT / "layers" / "hub"
    expected = {
        p.relative_to(source): p.read_bytes() for p in source.rglob("*.py") if "__pycache__" not in p.parts
    }
    copied = {p.relative_to(HUB / "hub"): p.read_bytes() for p in (HUB / "hub").rglob("*.py")}
    stale = sorted(str(p) for p in expected.keys() | copied.keys() if expected.get(p) != copied.get(p))
    assert not stale, f"build/layers/hub differs from layers/hub ({stale[:5]}...): run `make layer`"
    assert not list((HUB / "hub").rglob("__pycache__"))


def test_deps_layer_holds_the_runtime_dependencies_pinned_by_the_lock() -> None:
    installed = _distributions()
    pins = _lock_pins()
    direct = [
        Requirement(r)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    for requirement in direct:
        name = canonicalize_name(requirement.name)
        assert name in installed, f"{name} (pyproject dependencies) is not in the deps layer"
    for name, (version, _) in installed.items():
        assert version in pins.get(name, set()), f"{name}=={version} is not what requirements.lock pins"
    assert not RUNTIME_DISTRIBUTIONS & set(installed), "boto3/botocore come with the Lambda runtime"


def test_deps_layer_is_closed_under_its_own_requirements_for_the_lambda_target() -> None:
    installed = _distributions()
    missing = []
    for name, (_, requires) in installed.items():
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(TARGET):
                continue  # an extra, or another platform / Python
            dependency = canonicalize_name(requirement.name)
            if dependency not in installed and dependency not in RUNTIME_DISTRIBUTIONS:
                missing.append(f"{name} needs {requirement}")
    assert missing == []


def test_deps_layer_has_no_dev_packages_and_only_arm64_cpython312_binaries() -> None:
    """Nothing from the dev set, and compiled code only for arm64 CPython 3.12."""
    installed = _distributions()
    dev_only = {"aws-cdk-lib", "moto", "pytest", "boto3", "cfn-lint", "hypothesis", "ruff"}
    assert not dev_only & set(installed)
    extensions = [p.name for p in DEPS.rglob("*.so")]
    assert extensions, "pydantic-core ships compiled code: the layer looks empty"
    assert all("aarch64" in name or ".abi3." in name for name in extensions), extensions
    assert not [p for p in DEPS.rglob("*.so") if "x86_64" in p.name or "cpython-311" in p.name]


@pytest.mark.parametrize("function", sorted(FUNCTION_SETTINGS))
def test_every_runtime_import_resolves_from_the_function_or_its_layers(function: str) -> None:
    folder = ROOT / "functions" / function
    handler = folder / "handler.py"
    if not handler.is_file():
        pytest.skip(f"functions/{function}/handler.py is not written yet")
    graph = ImportGraph(folder, HUB, DEPS).resolve(handler)
    assert graph.unresolved == {}, (
        "not on the Lambda sys.path (function folder, build/layers/hub, build/layers/deps, stdlib, "
        f"{sorted(RUNTIME_PROVIDED)}): {graph.unresolved}"
    )
    reached = {m.name.split(".")[0] for m in graph.resolved.values()}
    assert "hub" in reached, "the handler should reach the hub layer (settings, observability)"


def test_the_import_check_reports_what_is_missing(tmp_path: Path) -> None:
    """Guards the check above: an import that is nowhere on the Lambda path is reported, with its importer."""
    (tmp_path / "handler.py").write_text(
        "import json\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mypy_boto3_s3\n"
        "def handler(event, context):\n    import moto\n    import boto3\n    return json.dumps(event)\n"
    )
    graph = ImportGraph(tmp_path, HUB, DEPS).resolve(tmp_path / "handler.py")
    assert graph.unresolved == {"moto": {"handler"}}
    assert graph.runtime == {"boto3"}
