"""What the package imports is what pyproject declares: the gateway's imports are runtime
dependencies, and what only the benchmarks need (stamina) is in the ``bench`` extra that ``make bench*``
installs, not in every user's install."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import files, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS = PROJECT["optional-dependencies"]
# bench/stack_choice.py compares web stacks (starlette, granian...) once, by hand; its README says what
# to install for it. `make bench*` does not run it.
OWN_STACK = frozenset({"stack_choice.py"})


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirements}


def _imports(folder: Path, skip: frozenset[str] = frozenset()) -> dict[str, Path]:
    """Third-party top-level modules imported at run time (not under ``if TYPE_CHECKING:``) by the
    ``.py`` files of ``folder`` -> a file importing it."""
    local = {path.stem for path in folder.rglob("*.py")} | {"ccrouter"}
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.py")):
        if path.name in skip:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from backports import zstd` imports backports.zstd.
                names = (
                    [f"{node.module}.{alias.name}" for alias in node.names]
                    if node.module == "backports"
                    else [node.module]
                )
            for name in names:
                # A namespace package's distribution is named by its first two parts (google.auth is
                # google-auth's; google-genai, a test dependency, shares the namespace).
                namespaced = name.startswith(("backports.", "google."))
                top = ".".join(name.split(".")[:2]) if namespaced else name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, path)
    return found


def _owners(dists: list[str], module: str) -> list[str]:
    """The distributions among ``dists`` that ship ``module`` (a namespace's subpackage: google.oauth2
    is google-auth's, not google-genai's)."""
    if "." not in module:
        return dists
    prefix = module.replace(".", "/") + "/"
    owners = [dist for dist in dists if any(str(f).startswith(prefix) for f in files(dist) or ())]
    return owners or dists


def _distributions(modules: dict[str, Path]) -> dict[str, Path]:
    """The (canonical) name of each installed distribution providing the modules -> a file importing it."""
    providers = packages_distributions()
    out: dict[str, Path] = {}
    for module, path in modules.items():
        dists = providers.get(module) or providers.get(module.split(".")[0]) or [module]
        # A namespace package (backports) is shared by distributions: the one named like the module.
        named = [dist for dist in dists if canonicalize_name(dist) == canonicalize_name(module)]
        for dist in named or _owners(dists, module):
            out[canonicalize_name(dist)] = path
    return out


def test_the_gateway_imports_only_runtime_dependencies() -> None:
    runtime = _names(PROJECT["dependencies"])
    # compression.zstd is the standard library's from Python 3.14 (backports.zstd before).
    imported = _distributions(_imports(ROOT / "src" / "ccrouter"))
    imported.pop("compression", None)
    undeclared = {name: str(path) for name, path in imported.items() if name not in runtime}
    assert not undeclared, f"imported by the gateway but not a runtime dependency: {undeclared}"


def test_what_only_the_benchmarks_use_is_in_the_bench_extra() -> None:
    runtime = _names(PROJECT["dependencies"])
    bench = _names(EXTRAS["bench"])
    imported = _distributions(_imports(ROOT / "bench", OWN_STACK))
    missing = {name: str(path) for name, path in imported.items() if name not in runtime | bench}
    assert not missing, f"imported by the benchmarks, in neither the runtime nor the bench extra: {missing}"
    assert "stamina" in bench
    assert "stamina" not in runtime, "only bench/ uses stamina: it stays out of every user's install"


def test_every_bench_target_installs_the_bench_extra() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^(bench[\w-]*):(.*)$", makefile, flags=re.MULTILINE)
    assert {name for name, _ in targets} >= {"bench", "bench-peers", "bench-routing"}
    for name, prerequisites in targets:
        assert "$(BENCHSTAMP)" in prerequisites.split(), f"make {name} does not install the bench extra"
    assert re.search(r"^\$\(BENCHSTAMP\):.*\n\t.*pip install .*'\.\[bench\]'", makefile, flags=re.MULTILINE)
