"""Ship what runs: prune the Lambda build directory (`make lambda-build`) and prove it still works.

    python -m infra.lean prune build/lambda     # drop what nothing imports; bytecode-only vendor
    python -m infra.lean smoke build/lambda     # import everything the functions import, in a
                                                # Lambda-like interpreter (no dev packages)

What is dropped, and why it is safe, is the table below; `smoke` imports every chalicelib module,
every third-party module our code imports lazily, and runs the holiday calendar, with only the
build directory and the packages the Lambda runtime provides (boto3, botocore, ...) on sys.path,
so a rule that removes something needed fails the build instead of a cold start in production.
Our own code keeps its `.py` sources (readable tracebacks, small); vendored packages ship
bytecode only (compiled next to where the source was, so imports need no `__pycache__`).
"""
from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Iterator, List, Tuple

#: (path under vendor/, why nothing at run time needs it)
DROP: List[Tuple[str, str]] = [
    ("aws_lambda_powertools/event_handler", "API Gateway resolvers and OpenAPI: Chalice does the routing"),
    *[(f"aws_lambda_powertools/utilities/{name}", "powertools utility we never import (only the Logger is used; "
                                                    "secrets are read with the runtime's SSM client)")
      for name in ("auth_alpha", "batch", "circuit_breaker", "data_classes", "data_masking", "feature_flags",
                   "idempotency", "kafka", "metadata", "parameters", "parser", "streaming", "validation")],
    ("holidays/locale", "translated holiday names: business-time arithmetic uses the dates only"),
    ("bin", "console scripts"),
]
#: Vendored sources that must stay (their package finds data files next to its own source).
KEEP_SOURCE: List[Tuple[str, str]] = [
    ("vaderSentiment/vaderSentiment.py", "opens its lexicons beside inspect.getsourcefile(): without the .py it "
                                         "cannot find them"),
]
#: Modules our code imports lazily (inside functions): smoke imports them too.
LAZY_IMPORTS = ["requests", "requests_oauthlib", "holidays", "jwt", "aws_xray_sdk.core",
                "pynamodb.connection", "pynamodb.transactions", "vaderSentiment.vaderSentiment",
                "snowballstemmer"]
#: What the Lambda Python runtime provides (not vendored; taken from this interpreter for smoke),
#: and chalice's runtime module, which `chalice package` adds to the zip itself.
RUNTIME_PROVIDED = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3", "chalice"]


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def prune(build: str) -> Dict[str, int]:
    """Apply DROP and make the vendored packages bytecode-only; bytes saved per rule."""
    vendor = os.path.join(build, "vendor")
    saved: Dict[str, int] = {}
    for relative, _why in DROP:
        path = os.path.join(vendor, relative)
        if os.path.exists(path):
            saved[relative] = _size(path)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    before = _size(vendor)
    for root, dirs, _files in os.walk(vendor):
        for name in [d for d in dirs if d == "__pycache__"]:
            shutil.rmtree(os.path.join(root, name))
    # Legacy layout (foo.pyc beside foo.py) imports without the source; unchecked: the Lambda file
    # system is read-only and the sources are gone, so nothing could be re-validated anyway.
    if not compileall.compile_dir(vendor, quiet=1, legacy=True, workers=0,
                                  invalidation_mode=compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH):
        raise RuntimeError("vendored sources failed to compile")
    keep = {os.path.normpath(os.path.join(vendor, relative)) for relative, _why in KEEP_SOURCE}
    for root, _dirs, files in os.walk(vendor):
        for name in files:
            path = os.path.normpath(os.path.join(root, name))
            if name.endswith(".py") and name + "c" in files and path not in keep:
                os.remove(path)
    saved["vendored .py sources (bytecode kept)"] = before - _size(vendor)
    return saved


@contextlib.contextmanager
def lambda_runtime() -> Iterator[str]:
    """A directory holding only what the Lambda Python runtime provides (symlinks into this
    interpreter's packages), for a child interpreter that must not see the dev packages."""
    import importlib.util

    runtime = tempfile.mkdtemp(prefix="lambda-runtime-")
    try:
        for name in RUNTIME_PROVIDED:
            spec = importlib.util.find_spec(name.removesuffix(".py"))
            if spec is None or spec.origin is None:
                continue
            source = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
            os.symlink(source, os.path.join(runtime, os.path.basename(source)))
        yield runtime
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def lambda_path_code(code_dirs: List[str], runtime: str) -> str:
    """Python that sets sys.path like Lambda's: the function's code, then the runtime's packages
    (run the child with `-S`, so no site-packages is added)."""
    paths = [os.path.abspath(p) for p in code_dirs] + [runtime]
    return ("import sys\n"
            f"sys.path[:] = {paths!r} + [p for p in sys.path if 'site-packages' not in p "
            "and 'dist-packages' not in p]\n")


def child_env(**extra: str) -> Dict[str, str]:
    """The environment of a Lambda-like child: no virtualenv or PYTHON* settings of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.update(extra)
    return env


def smoke(build: str) -> None:
    """Import every chalicelib module and each lazy import, compute one year of holidays, score a
    sentence with VADER and stem a word (both read data files at run time), with
    sys.path = [build, build/vendor, runtime-provided packages only]. Raises on any failure."""
    with lambda_runtime() as runtime:
        modules = ["app"] + sorted(_chalicelib_modules(build)) + LAZY_IMPORTS
        script = (
            lambda_path_code([build, os.path.join(build, "vendor")], runtime)
            + "import importlib\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "import holidays\n"
            "assert holidays.country_holidays('DE', subdiv='BY', years=2026)\n"
            "assert holidays.country_holidays('ZA', years=2026)\n"
            "from chalicelib.listening import sentiment, text\n"
            "assert sentiment.score('I love it', 'en')['label'] == 'positive'\n"
            "assert text.stem('reembolsos', 'es') == 'reembols'\n"
        )
        result = subprocess.run([sys.executable, "-S", "-c", script], env=child_env(SOCIALINBOX_STAGE="dev"),
                                capture_output=True, text=True, timeout=120, cwd=runtime)
        if result.returncode != 0:
            raise RuntimeError("the pruned build does not import:\n" + result.stderr[-3000:])


def _chalicelib_modules(build: str) -> List[str]:
    found = []
    root = os.path.join(build, "chalicelib")
    for directory, _dirs, files in os.walk(root):
        package = os.path.relpath(directory, build).replace(os.sep, ".")
        for name in files:
            if name.endswith(".py"):
                found.append(package if name == "__init__.py" else f"{package}.{name[:-3]}")
    return found


def main(argv: List[str] = None) -> int:  # type: ignore[assignment]
    parser = argparse.ArgumentParser(prog="python -m infra.lean")
    parser.add_argument("command", choices=["prune", "smoke"])
    parser.add_argument("build")
    args = parser.parse_args(argv)
    if args.command == "prune":
        for rule, size in prune(args.build).items():
            print(f"{size / 1e6:6.2f} MB  {rule}")
    else:
        smoke(args.build)
        print("smoke: every module imports from the pruned build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
