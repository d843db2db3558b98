"""Cold start proxy: a fresh interpreter until the handler is imported and its AWS client made,
each function run right after the baseline, so that drift on a noisy machine hits both alike."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.cost_model import api_function
from bench.measurement import BenchContext, Headline, Section, table, verdict
from offline import cfn_template
from offline.cfn_template import Function

# The purchase function's cold start may cost at most this much more than a bare boto3 client.
TARGET_RATIO = 1.2
# The client the baseline creates: the one the purchase path needs.
BASELINE_SERVICE = "stepfunctions"
# The Lambda Python runtime ships boto3 and what it depends on.
RUNTIME_REQUIREMENTS = ("boto3",)
CHILD_TIMEOUT_SECONDS = 60
# boto3.client("stepfunctions", ...) in a function's code: the AWS clients it creates.
_CLIENT_CALL = re.compile(r"""boto3\.client\(\s*["']([a-z0-9-]+)["']""")

_CHILD = """
import json, sys, time
spec = json.loads(sys.argv[1])
started = time.perf_counter()
sys.path[0:0] = spec["path"]
if spec["module"]:
    __import__(spec["module"])
    getattr(sys.modules[spec["module"]], spec["handler"])
if spec["services"]:
    import boto3
    for service in spec["services"]:
        boto3.client(service)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


class SetupError(Exception):
    """A function cannot be laid out or does not start."""


@dataclass(frozen=True)
class Subject:
    """What the child imports and creates (its `_CHILD` spec), and its environment."""

    spec: Mapping[str, object]
    environment: Mapping[str, str]
    seconds: list[float] = field(default_factory=list)
    paired_ratios: list[float] = field(default_factory=list)


def measure(context: BenchContext) -> Section:
    functions = [
        cfn_template.function(context.template, logical_id, unresolved="placeholder")
        for logical_id in cfn_template.resources_of_type(
            dict(context.template), "AWS::Serverless::Function"
        )
    ]
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as temporary:
        root = Path(temporary)
        runtime_dir = root / "runtime"
        _link_distributions(closure(RUNTIME_REQUIREMENTS), runtime_dir)
        baseline = Subject(
            {"path": [str(runtime_dir)], "module": None, "services": [BASELINE_SERVICE]},
            _lambda_environment(root, "baseline", root / "baseline", {}),
        )
        subjects = [_lay_out(function, root, runtime_dir) for function in functions]
        for subject in [baseline, *subjects]:
            _run(subject)  # also warms the file cache; the figure is discarded
        for round_index in range(context.runs):
            turn = round_index % len(subjects)
            for subject in subjects[turn:] + subjects[:turn]:
                baseline_seconds, subject_seconds = _run(baseline), _run(subject)
                baseline.seconds.append(baseline_seconds)
                subject.seconds.append(subject_seconds)
                subject.paired_ratios.append(subject_seconds / baseline_seconds)
    return _section(context, functions, baseline, subjects)


def _lay_out(function: Function, root: Path, runtime_dir: Path) -> Subject:
    """/var/task (code and requirements) and /opt/python (layers) of one function."""
    task = root / function.logical_id / "task"
    opt = root / function.logical_id / "opt" / "python"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(function.code_dir, task, ignore=ignore)
    opt.mkdir(parents=True)
    for layer_dir in function.layer_dirs:
        shutil.copytree(layer_dir, opt, ignore=ignore, dirs_exist_ok=True)
    requirements = function.code_dir / "requirements.txt"
    if requirements.is_file():
        needed = [
            distribution
            for distribution in closure(requirement_lines(requirements))
            if canonicalize_name(distribution.metadata["Name"]) not in runtime_provided()
        ]
        _link_distributions(needed, task)
    spec = {
        "path": [str(task), str(opt), str(runtime_dir)],
        "module": function.module,
        "handler": function.handler.rsplit(".", 1)[1],
        "services": list(aws_services(function)),
    }
    return Subject(spec, _lambda_environment(root, function.logical_id, task, function.environment))


def _lambda_environment(
    root: Path, name: str, task: Path, variables: Mapping[str, str]
) -> dict[str, str]:
    """The variables the Lambda runtime sets, plus the function's own. Nothing inherited but PATH,
    so that no local profile, credentials file or PYTHON* setting leaks in."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Lambda gives credentials as variables; without them botocore would probe for more.
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "AWS_SESSION_TOKEN": "offline",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        **variables,
    }


def aws_services(function: Function) -> tuple[str, ...]:
    """The AWS clients the function's code creates, in the order it names them."""
    sources = sorted(function.code_dir.glob("*.py"))
    found = (_CLIENT_CALL.findall(source.read_text(encoding="utf-8")) for source in sources)
    return tuple(dict.fromkeys(service for services in found for service in services))


def requirement_lines(path: Path) -> list[str]:
    """The requirement specifiers of a requirements.txt: no comments, blanks or options."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def closure(requirements: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions `requirements` resolve to here, dependencies included."""
    pending = [(Requirement(line), "") for line in requirements]
    found: dict[str, importlib.metadata.Distribution] = {}
    while pending:
        requirement, extra = pending.pop()
        # evaluate() starts from this interpreter's environment and adds the extra.
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise SetupError(f"needs {requirement.name}, not installed here (make dev)") from None
        found[name] = distribution
        for extra_name in ["", *requirement.extras]:
            pending += [(Requirement(line), extra_name) for line in distribution.requires or []]
    return list(found.values())


@functools.cache
def runtime_provided() -> frozenset[str]:
    """The distributions the Lambda Python runtime ships (boto3's closure), by canonical name."""
    return frozenset(
        canonicalize_name(distribution.metadata["Name"])
        for distribution in closure(RUNTIME_REQUIREMENTS)
    )


def top_level_names(distribution: importlib.metadata.Distribution) -> set[str]:
    """The folders and modules a distribution installs at the top of site-packages."""
    return {Path(file).parts[0] for file in distribution.files or []} - {".."}


def _link_distributions(
    distributions: Iterable[importlib.metadata.Distribution], target: Path
) -> None:
    """Make `target` a site-packages holding just these distributions (symbolic links)."""
    target.mkdir(parents=True, exist_ok=True)
    for distribution in distributions:
        for top in sorted(top_level_names(distribution)):
            source = Path(str(distribution.locate_file(top)))
            link = target / top
            if source.exists() and not link.exists():
                link.symlink_to(source, target_is_directory=source.is_dir())


def _run(subject: Subject) -> float:
    """Seconds from the child's first import to ready."""
    # -I -S: no site-packages, no user site, no PYTHON* variables; -B: no bytecode written.
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-I", "-S", "-B", "-c", _CHILD, json.dumps(subject.spec)],
        env=dict(subject.environment),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SetupError(f"{subject.spec['module']} does not start: {last_line}")
    return float(json.loads(result.stdout)["seconds"])


def _section(
    context: BenchContext, functions: list[Function], baseline: Subject, subjects: list[Subject]
) -> Section:
    baseline_median = statistics.median(baseline.seconds)
    rows: list[list[object]] = [
        [
            f"baseline: `import boto3` + `boto3.client('{BASELINE_SERVICE}')`",
            len(baseline.seconds),
            f"{baseline_median * 1000:.1f}",
            "1.00x",
            "",
        ]
    ]
    headlines = []
    target_function = api_function(context.template)[0]
    for function, subject in zip(functions, subjects, strict=True):
        median = statistics.median(subject.seconds)
        ratio = median / baseline_median
        clients = ", ".join(aws_services(function)) or "none"
        rows.append(
            [
                f"{function.logical_id}: `{function.module}` + clients: {clients}",
                len(subject.seconds),
                f"{median * 1000:.1f}",
                f"{ratio:.2f}x",
                f"{statistics.median(subject.paired_ratios):.2f}x",
            ]
        )
        title = f"Cold start proxy, {function.logical_id} / baseline"
        if function.logical_id == target_function:
            milliseconds = f"{median * 1000:.0f} ms vs {baseline_median * 1000:.0f} ms"
            figure, target = f"{ratio:.2f}x ({milliseconds})", f"<= {TARGET_RATIO}x"
            headlines.append(Headline(title, figure, target, verdict(ratio <= TARGET_RATIO)))
        else:
            headlines.append(Headline(title, f"{ratio:.2f}x"))
    body = "\n\n".join(
        [
            'Time in a fresh interpreter from its first import to "handler module imported and '
            'the AWS clients its code creates (`boto3.client(...)`) created", laid out like a '
            "Lambda execution environment: the code copied without bytecode, the layers on the "
            "path, the requirements and the runtime's boto3 linked from the development "
            "environment, nothing else importable, and the runtime's variables set. "
            f"{context.runs} rounds; each subject run right after a baseline run. Interpreter "
            "start-up itself is not counted. This machine is not a Graviton at 128 MB: compare "
            "the ratios, not the milliseconds.",
            table(
                ["subject", "runs", "median ms", "median / baseline median", "median paired ratio"],
                rows,
            ),
        ]
    )
    return Section("Cold start proxy", body, tuple(headlines))
