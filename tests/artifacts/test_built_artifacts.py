"""What `make build` made in .aws-sam/build, the artifacts `make deploy` ships.

Every function and layer of template.yaml is there with exactly its folder's code and its pinned
requirements, native code (if any) for arm64, nothing of the project's tests, offline stack,
benchmarks or sample events, no package the python3.13 runtime provides shadowed unless listed
below, each package within Lambda's size quotas, and the built template passes cfn-lint.

`make build` runs this file right after `sam build`. Under `make test` it inspects the build that
is there: under CI=true (.ci/run runs `make build` first) a missing or stale build fails; on a
developer's machine it is skipped, saying so, since there is nothing current to inspect.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from bench.cold_start import requirement_lines
from bench.package_size import (
    UNZIPPED_LIMIT_MB,
    ZIPPED_LIMIT_MB,
    _runtime_provided,
    _zipped_size,
)
from offline import cfn_template

ROOT = cfn_template.ROOT
BUILD_DIR = ROOT / ".aws-sam" / "build"
BUILT_TEMPLATE = BUILD_DIR / "template.yaml"
SOURCE = cfn_template.load_template()
FUNCTIONS = sorted(cfn_template.resources_of_type(SOURCE, "AWS::Serverless::Function"))
LAYERS = sorted(cfn_template.resources_of_type(SOURCE, "AWS::Serverless::LayerVersion"))

# Lambda quotas, https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
# ("Deployment package (.zip file archive) size"), where MB means 1,024 KB: 50 MB zipped for an
# upload through the Lambda API (sam deploy goes through S3, which lifts it, but a package this
# project ships stays directly uploadable), 250 MB unzipped for a function with all its layers
# (the error says "Unzipped size must be smaller than 262144000 bytes"), and 5 layers.
MIB = 1024 * 1024
ZIPPED_LIMIT = ZIPPED_LIMIT_MB * MIB
UNZIPPED_LIMIT = UNZIPPED_LIMIT_MB * MIB
MAX_LAYERS = 5
# Packages the runtime also provides that a function may ship anyway, and why.
INTENDED_SHADOWS = {
    # aws-lambda-powertools requires it (its idempotency keys are JMESPath expressions), so pip
    # installs it with it; pure Python, about 20 KB zipped, the version the flyer function pins.
    "jmespath": "a dependency of aws-lambda-powertools",
}
# The project's folders that no package may hold, nor any file at their top by its name.
PROJECT_ONLY = ("tests", "offline", "bench", "events")
# A function built by its folder's Makefile (BuildMethod: makefile, the catalog functions) ships
# its code without the build's own files, and the RDS CA bundle the build fetched, which the
# function verifies the catalog's certificate against (DB_SSL_CA).
MAKEFILE_BUILD_FILES = {"Makefile", "requirements.txt"}
CA_BUNDLE = "rds-global-bundle.pem"
ELF_MAGIC = b"\x7fELF"
ELF_MACHINE_AARCH64 = 183


def _required() -> bool:
    """Under CI, and when `make build` runs this file, a build must be there to inspect."""
    return (
        os.environ.get("CI", "").lower() == "true" or os.environ.get("INSPECT_BUILD") == "required"
    )


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _source_files(folder: Path) -> list[Path]:
    """A source folder's files, without the bytecode that importing it in the tests leaves."""
    return [
        path for path in _files(folder) if "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def _stale_reason() -> str | None:
    """Why .aws-sam/build is not the build of this checkout, or None."""
    if not BUILT_TEMPLATE.is_file():
        return "no build in .aws-sam/build"
    built_at = BUILT_TEMPLATE.stat().st_mtime
    sources = [cfn_template.TEMPLATE_PATH]
    for logical_id in FUNCTIONS + LAYERS:
        sources += _source_files(ROOT / _code_uri(SOURCE, logical_id))
    newer = [path for path in sources if path.stat().st_mtime > built_at]
    if newer:
        return f"the build is older than {newer[0].relative_to(ROOT)}"
    return None


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """The built template; a missing or stale build fails under CI and is skipped elsewhere."""
    reason = _stale_reason()
    if reason is not None:
        message = f"{reason}: `make build` builds and inspects it"
        if _required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return cfn_template.load_template(BUILT_TEMPLATE)


def _code_uri(template: dict[str, Any], logical_id: str) -> str:
    properties = template["Resources"][logical_id]["Properties"]
    return str(properties.get("CodeUri") or properties["ContentUri"])


def _package(built: dict[str, Any], logical_id: str) -> Path:
    """The built folder of a function, or the folder a layer's code sits in (python/)."""
    folder = BUILD_DIR / _code_uri(built, logical_id)
    return folder / "python" if logical_id in LAYERS else folder


def _distributions(package: Path) -> list[importlib.metadata.Distribution]:
    return list(importlib.metadata.distributions(path=[str(package)]))


def _installed_files(package: Path) -> set[str]:
    """Paths, relative to the package, of the files its installed distributions recorded (a
    console script recorded outside it, by `pip install --target`, is not in the package)."""
    recorded = {
        Path(os.path.normpath(package / str(file)))
        for distribution in _distributions(package)
        for file in distribution.files or []
    }
    return {path.relative_to(package).as_posix() for path in recorded if package in path.parents}


def _built_by_makefile(logical_id: str) -> bool:
    return bool(
        SOURCE["Resources"][logical_id].get("Metadata", {}).get("BuildMethod") == "makefile"
    )


def test_every_function_and_layer_is_built(built: dict[str, Any]) -> None:
    for kind in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
        assert sorted(cfn_template.resources_of_type(built, kind)) == sorted(
            cfn_template.resources_of_type(SOURCE, kind)
        )
    assert set(built["Resources"]) == set(SOURCE["Resources"])
    for logical_id in FUNCTIONS:
        module = built["Resources"][logical_id]["Properties"]["Handler"].rsplit(".", 1)[0]
        assert (_package(built, logical_id) / f"{module}.py").is_file(), logical_id
    for logical_id in LAYERS:
        assert any(_package(built, logical_id).glob("*.py")), f"{logical_id}: no python/*.py"


@pytest.mark.parametrize("logical_id", FUNCTIONS + LAYERS)
def test_own_code_is_exactly_its_folder(built: dict[str, Any], logical_id: str) -> None:
    package = _package(built, logical_id)
    installed = _installed_files(package)
    own = {
        relative: path.read_bytes()
        for path in _files(package)
        if (relative := path.relative_to(package).as_posix()) not in installed
        and "__pycache__" not in path.parts
    }
    folder = ROOT / _code_uri(SOURCE, logical_id)
    source = {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in _source_files(folder)
    }
    if _built_by_makefile(logical_id):
        source = {name: code for name, code in source.items() if name not in MAKEFILE_BUILD_FILES}
        assert own.pop(CA_BUNDLE).startswith(b"-----BEGIN CERTIFICATE-----")
    assert sorted(own) == sorted(source)
    assert [name for name in own if own[name] != source[name]] == []


@pytest.mark.parametrize("logical_id", FUNCTIONS + LAYERS)
def test_pinned_requirements_are_installed(built: dict[str, Any], logical_id: str) -> None:
    requirements = ROOT / _code_uri(SOURCE, logical_id) / "requirements.txt"
    pinned = [line.split("==") for line in requirement_lines(requirements) if "==" in line]
    installed = {
        canonicalize_name(distribution.metadata["Name"]): distribution.version
        for distribution in _distributions(_package(built, logical_id))
    }
    for name, version in pinned:
        assert installed.get(canonicalize_name(name)) == version, name


def test_nothing_of_the_project_but_the_function_code(built: dict[str, Any]) -> None:
    """No tests, offline stack, benchmarks or sample events: not by folder, not by module."""
    forbidden = set(PROJECT_ONLY)
    for folder in PROJECT_ONLY:
        forbidden |= {path.name for path in (ROOT / folder).iterdir() if path.is_file()}
    forbidden -= {"__init__.py"}
    for logical_id in FUNCTIONS + LAYERS:
        package = _package(built, logical_id)
        names = {path.relative_to(package).parts[0] for path in _files(package)}
        nested = {
            path.relative_to(package).as_posix()
            for path in _files(package)
            if path.name == "conftest.py" or path.name.startswith("test_")
        }
        assert names & forbidden == set(), logical_id
        assert nested == set(), logical_id


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_packages_are_within_lambda_quotas(
    built: dict[str, Any], logical_id: str, tmp_path: Path
) -> None:
    properties = {
        **built.get("Globals", {}).get("Function", {}),
        **built["Resources"][logical_id]["Properties"],
    }
    layers = [layer["Ref"] for layer in properties.get("Layers", [])]
    assert len(layers) <= MAX_LAYERS
    unzipped = 0
    # A function's zip holds its folder; a layer's, its folder with python/ in it.
    for name in [logical_id, *layers]:
        root = BUILD_DIR / _code_uri(built, name)
        files = _files(root)
        zipped = _zipped_size(files, root, tmp_path / f"{name}.zip")
        assert zipped < ZIPPED_LIMIT, f"{name}: {zipped:,} bytes zipped"
        unzipped += sum(path.stat().st_size for path in files)
    assert unzipped < UNZIPPED_LIMIT, f"{logical_id} with its layers: {unzipped:,} bytes unzipped"


@pytest.mark.parametrize("logical_id", FUNCTIONS + LAYERS)
def test_no_runtime_provided_package_is_shadowed(built: dict[str, Any], logical_id: str) -> None:
    shipped = set(_runtime_provided(_package(built, logical_id)))
    assert shipped - set(INTENDED_SHADOWS) == set(), "the python3.13 runtime provides these"


@pytest.mark.parametrize("logical_id", FUNCTIONS + LAYERS)
def test_native_code_is_for_arm64(built: dict[str, Any], logical_id: str) -> None:
    wrong = []
    for path in _files(_package(built, logical_id)):
        with path.open("rb") as handle:
            header = handle.read(20)
        if (
            header[:4] == ELF_MAGIC
            and int.from_bytes(header[18:20], "little") != ELF_MACHINE_AARCH64
        ):
            wrong.append(path.name)
    assert wrong == [], "the functions run on arm64 (Architectures in template.yaml)"


def test_built_template_passes_cfn_lint(built: dict[str, Any]) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), str(BUILT_TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
