"""Built size of each function and layer: its code plus its requirements for python3.13 arm64."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name

from bench.cold_start import requirement_lines, runtime_provided, top_level_names
from bench.measurement import BenchContext, Headline, Section, table
from offline.cfn_template import ROOT, resources_of_type

PIP_TIMEOUT_SECONDS = 150
# Lambda's zipped upload limit (direct upload) and unzipped limit, code and layers together.
ZIPPED_LIMIT_MB = 50
UNZIPPED_LIMIT_MB = 250
_PIP_PLATFORM = (
    "--platform manylinux2014_aarch64 --only-binary=:all: --python-version 3.13 --implementation cp"
)


def measure(context: BenchContext) -> Section:
    rows = []
    headlines = []
    for kind, folder in (
        ("AWS::Serverless::Function", "CodeUri"),
        ("AWS::Serverless::LayerVersion", "ContentUri"),
    ):
        for name, resource in resources_of_type(dict(context.template), kind).items():
            row, headline = _package_size(name, ROOT / resource["Properties"][folder])
            rows.append(row)
            headlines.append(Headline(f"Package size, {name} (zipped)", headline))
    body = "\n".join(
        [
            "Each function's and layer's folder (bytecode left out) plus its `requirements.txt` "
            "installed with `pip install --target --platform manylinux2014_aarch64 "
            "--only-binary=:all: --python-version 3.13`, zipped (deflate) as `sam build` does. "
            "The runtime already holds boto3, botocore, s3transfer, jmespath, python-dateutil, "
            "six and urllib3; when a requirement pulls one of them in, pip installs it anyway "
            "and it ships in the package (and shadows the runtime's copy), so both totals are "
            f"shown. Lambda's limits: {ZIPPED_LIMIT_MB} MB zipped for a direct upload, "
            f"{UNZIPPED_LIMIT_MB} MB unzipped with layers.",
            "",
            table(
                [
                    "package",
                    "code (zip)",
                    "dependencies (zip)",
                    "total (zip)",
                    "total without runtime-provided (zip)",
                    "total (unzipped)",
                    "runtime-provided packages it ships",
                ],
                rows,
            ),
        ]
    )
    return Section("Package sizes", body, tuple(headlines))


def _human(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.2f} MB"
    return f"{size / 1000:.1f} KB"


def _package_size(name: str, code_dir: Path) -> tuple[list[str], str]:
    """The package's row in the report and its headline figure."""
    code_files = list(_files(code_dir))
    with tempfile.TemporaryDirectory(prefix="bench-package-") as temporary:
        target = Path(temporary) / "deps"
        target.mkdir()
        requirements = code_dir / "requirements.txt"
        if requirements.is_file() and requirement_lines(requirements):
            _pip_install(requirements, target)
        dependency_files = list(_files(target))
        provided = _runtime_provided(target)
        runtime_tops = set().union(*provided.values())
        runtime_files = [
            p for p in dependency_files if p.relative_to(target).parts[0] in runtime_tops
        ]
        zips = Path(temporary)
        code = _zipped_size(code_files, code_dir, zips / "code.zip")
        deps = _zipped_size(dependency_files, target, zips / "deps.zip")
        runtime = _zipped_size(runtime_files, target, zips / "runtime.zip") if runtime_files else 0
        unzipped = sum(path.stat().st_size for path in [*code_files, *dependency_files])
    row = [
        name,
        _human(code),
        _human(deps),
        _human(code + deps),
        _human(code + deps - runtime),
        _human(unzipped),
        ", ".join(sorted(provided)) or "none",
    ]
    headline = _human(code + deps)
    if runtime:
        headline += f" ({_human(code + deps - runtime)} without runtime-provided)"
    return row, headline


def _files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _pip_install(requirements: Path, target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-compile", "--target", str(target), *_PIP_PLATFORM.split()]
    result = subprocess.run(  # noqa: S603 - pip from this interpreter, fixed arguments
        [*command, "--requirement", str(requirements)],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"pip could not install {requirements}:\n{result.stderr}")


def _runtime_provided(target: Path) -> dict[str, set[str]]:
    """Runtime-provided distributions installed in `target` -> their top-level names."""
    return {
        name: top_level_names(distribution)
        for distribution in importlib.metadata.distributions(path=[str(target)])
        if (name := canonicalize_name(distribution.metadata["Name"])) in runtime_provided()
    }


def _zipped_size(files: Iterable[Path], root: Path, archive: Path) -> int:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in files:
            bundle.write(path, path.relative_to(root).as_posix())
    return archive.stat().st_size
