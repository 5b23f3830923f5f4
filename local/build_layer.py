"""Build the two Lambda layer directories the CDK app packages (``make layer``).

- ``build/layers/deps/python/``: the runtime dependency set only (``[project].dependencies`` of pyproject.toml
  and their transitive closure, at the versions pinned in requirements.lock), as arm64 manylinux wheels for
  CPython 3.12, installed without Docker by uv. boto3/botocore are not shipped: the Lambda runtime has them.
  Skipped when the stamp records the same inputs (a fresh build needs the network; a rebuilt one is instant).
- ``build/layers/hub/python/hub/``: a copy of ``layers/hub/`` without bytecode, refreshed on every run.

Run as ``python -m local.build_layer [--force]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
HUB_SOURCE = ROOT / "layers" / "hub"
LAYERS_DIR = ROOT / "build" / "layers"
DEPS_DIR = LAYERS_DIR / "deps"
HUB_DIR = LAYERS_DIR / "hub"
# Outside the asset directory, so the stamp never changes what CDK hashes and uploads.
DEPS_STAMP = LAYERS_DIR / ".deps.stamp.json"

# The Lambda target: keep in step with infra/function.py (runtime PYTHON_3_12, Architecture.ARM_64).
PYTHON_PLATFORM = "aarch64-manylinux2014"
PYTHON_VERSION = "3.12"
# Bump when this script changes what ends up in the deps layer, so an old build is not reused.
RECIPE_VERSION = "1"
# Provided by the Lambda Python runtime; never shipped in the layer (s3transfer only comes with boto3).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# Installer bookkeeping that changes between builds and is useless at run time (METADATA stays, so
# importlib.metadata.version() keeps working).
DIST_INFO_NOISE = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json")


def _uv() -> str:
    candidate = Path(sys.executable).with_name("uv")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("uv")
    if not found:
        raise SystemExit("uv not found next to the interpreter or on PATH: run `make install` first")
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_dependencies() -> list[str]:
    return list(tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"])


def lock_pins() -> dict[str, str]:
    """Canonical package name -> version, as pinned in requirements.lock."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def inputs_digest() -> str:
    digest = hashlib.sha256()
    for part in (
        RECIPE_VERSION,
        PYTHON_PLATFORM,
        PYTHON_VERSION,
        json.dumps(runtime_dependencies()),
        LOCK.read_text(),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _run(cmd: list[str]) -> None:
    completed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)  # noqa: S603
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr)
        raise SystemExit(f"command failed ({completed.returncode}): {' '.join(cmd)}")


def _compile(uv: str, out: Path) -> dict[str, str]:
    """Resolve the runtime closure for the Lambda target, constrained to the lock; name -> version."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements_in = Path(tmp) / "runtime.in"
        requirements_in.write_text("\n".join(runtime_dependencies()) + "\n")
        _run(
            [
                uv, "pip", "compile", str(requirements_in),
                "--constraints", str(LOCK),
                "--python-platform", PYTHON_PLATFORM,
                "--python-version", PYTHON_VERSION,
                "--only-binary", ":all:",
                "--generate-hashes",
                "--no-header", "--no-annotate", "--quiet",
                *[arg for name in sorted(RUNTIME_PROVIDED) for arg in ("--no-emit-package", name)],
                "--output-file", str(out),
            ]
        )  # fmt: skip
    resolved: dict[str, str] = {}
    for line in out.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if match:
            resolved[_canonical(match.group(1))] = match.group(2)
    return resolved


def _check_pins(resolved: dict[str, str]) -> None:
    pins = lock_pins()
    problems = [
        f"{name}=={version} (lock: {pins.get(name, 'absent')})"
        for name, version in sorted(resolved.items())
        if pins.get(name) != version
    ]
    if problems:
        raise SystemExit(
            "the Lambda runtime set resolves to versions requirements.lock does not pin: "
            + ", ".join(problems)
            + ". Run `make lock`."
        )


def _strip(site: Path) -> list[str]:
    removed: list[str] = []
    for cache in sorted(site.rglob("__pycache__")):
        shutil.rmtree(cache)
        removed.append(str(cache.relative_to(site)))
    bin_dir = site / "bin"  # console scripts of the installed wheels; nothing runs them in Lambda
    if bin_dir.is_dir():
        shutil.rmtree(bin_dir)
        removed.append("bin/")
    for dist_info in site.glob("*.dist-info"):
        for noise in DIST_INFO_NOISE:
            target = dist_info / noise
            if target.is_file():
                target.unlink()
    # Test folders inside third-party packages are left alone: a package may import its own `tests` module.
    return removed


def build_deps(force: bool = False) -> str:
    digest = inputs_digest()
    site = DEPS_DIR / "python"
    if not force and site.is_dir() and DEPS_STAMP.is_file():
        stamp = json.loads(DEPS_STAMP.read_text())
        if stamp.get("inputs") == digest:
            return (
                f"deps layer up to date ({len(stamp['packages'])} packages for {PYTHON_PLATFORM}/"
                f"cp{PYTHON_VERSION.replace('.', '')}, lock unchanged): {site.relative_to(ROOT)}"
            )

    started = time.monotonic()
    uv = _uv()
    staging = LAYERS_DIR / ".deps.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "python").mkdir(parents=True)
    requirements = LAYERS_DIR / ".deps.requirements.txt"
    resolved = _compile(uv, requirements)
    _check_pins(resolved)
    _run(
        [
            uv, "pip", "install",
            "--target", str(staging / "python"),
            "--python-platform", PYTHON_PLATFORM,
            "--python-version", PYTHON_VERSION,
            "--only-binary", ":all:",
            "--require-hashes", "--no-deps", "--quiet",
            "--requirements", str(requirements),
        ]
    )  # fmt: skip
    stripped = _strip(staging / "python")
    # Swap in the finished build only now, so an interrupted run never leaves a half-filled layer.
    shutil.rmtree(DEPS_DIR, ignore_errors=True)
    staging.rename(DEPS_DIR)
    DEPS_STAMP.write_text(
        json.dumps({"inputs": digest, "packages": resolved}, indent=2, sort_keys=True) + "\n"
    )
    size_mb = sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) / 1_048_576
    packages = ", ".join(f"{name}=={version}" for name, version in sorted(resolved.items()))
    return (
        f"deps layer built in {time.monotonic() - started:.1f}s: {len(resolved)} packages for "
        f"{PYTHON_PLATFORM}/cp{PYTHON_VERSION.replace('.', '')} ({size_mb:.1f} MB, stripped {len(stripped)} "
        f"paths) -> {site.relative_to(ROOT)}\n  {packages}"
    )


def build_hub() -> str:
    target = HUB_DIR / "python" / "hub"
    shutil.rmtree(HUB_DIR, ignore_errors=True)
    shutil.copytree(HUB_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    count = sum(1 for f in target.rglob("*.py"))
    source, built = HUB_SOURCE.relative_to(ROOT), target.relative_to(ROOT)
    return f"hub layer refreshed: {count} modules from {source} -> {built}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.build_layer", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--force", action="store_true", help="rebuild the deps layer even if the lock is unchanged"
    )
    args = parser.parse_args(argv)
    LAYERS_DIR.mkdir(parents=True, exist_ok=True)
    print(build_deps(force=args.force))
    print(build_hub())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
