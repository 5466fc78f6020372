"""The import-linter contracts can fail: a forbidden import in a copy of the tree breaks them.

Each case copies the source tree with the project's pyproject.toml and tools/, writes one import
into one module, and runs `lint-imports` there (the copy first on PYTHONPATH, so it is the copy
that is analysed). The untouched copy is checked too, so a failure is the import's doing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grimp
import pytest
from tools.import_contracts import Allowance, check_allowances

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
DOMAIN = "The domain is pure"
PORTS = "Ports name capabilities"
ADAPTERS = "Adapters: each subpackage"
APP = "App: each subpackage"
DASHBOARD = "The dashboard reads the agent over HTTP"


@dataclass(frozen=True, slots=True)
class Case:
    """One import written at the top of one module, and the contract and line it must break."""

    module: str
    line: str
    contract: str
    message: str


CASES = {
    "domain imports random": Case(
        "src/fin_agent/domain/values.py",
        "import random",
        DOMAIN,
        "fin_agent.domain.values may not import random",
    ),
    "domain imports time": Case(
        "src/fin_agent/domain/risk_engine.py",
        "import time",
        DOMAIN,
        "fin_agent.domain.risk_engine may not import time",
    ),
    "domain imports os": Case(
        "src/fin_agent/domain/gap_scanner.py",
        "import os",
        DOMAIN,
        "fin_agent.domain.gap_scanner may not import os",
    ),
    "domain imports secrets": Case(
        "src/fin_agent/domain/events.py",
        "from secrets import token_hex",
        DOMAIN,
        "fin_agent.domain.events may not import secrets",
    ),
    "domain imports a library": Case(
        "src/fin_agent/domain/indicators.py",
        "import duckdb",
        DOMAIN,
        "fin_agent.domain.indicators may not import duckdb",
    ),
    "ports import os": Case(
        "src/fin_agent/ports/clock.py",
        "import os",
        PORTS,
        "fin_agent.ports.clock may not import os",
    ),
    "ports import a library": Case(
        "src/fin_agent/ports/store.py",
        "import structlog",
        PORTS,
        "fin_agent.ports.store may not import structlog",
    ),
    "codec imports the redis adapter": Case(
        "src/fin_agent/adapters/codec/values.py",
        "from fin_agent.adapters.redis import streams",
        ADAPTERS,
        "fin_agent.adapters.codec.values may not import fin_agent.adapters.redis.streams",
    ),
    "storage imports redis": Case(
        "src/fin_agent/adapters/storage/rows.py",
        "import redis",
        ADAPTERS,
        "fin_agent.adapters.storage.rows may not import redis",
    ),
    "coordinator imports an adapter": Case(
        "src/fin_agent/app/coordinator.py",
        "from fin_agent.adapters.redis import bus",
        APP,
        "fin_agent.app.coordinator may not import fin_agent.adapters.redis.bus",
    ),
    "dashboard imports an adapter": Case(
        "dashboard/tables.py",
        "from fin_agent.adapters import memory",
        DASHBOARD,
        "dashboard.tables may not import fin_agent.adapters.memory",
    ),
    "dashboard imports app internals": Case(
        "dashboard/client.py",
        "from fin_agent.app import bootstrap",
        DASHBOARD,
        "dashboard.client may not import fin_agent.app.bootstrap",
    ),
    "dashboard imports a domain rule": Case(
        "dashboard/views/scan.py",
        "from fin_agent.domain import gap_scanner",
        DASHBOARD,
        "dashboard.views.scan may not import fin_agent.domain.gap_scanner",
    ),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of what `lint-imports` reads: the sources, the dashboard, the config, tools/."""
    root = tmp_path_factory.mktemp("tree")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("src", "dashboard", "tools"):
        shutil.copytree(REPO / folder, root / folder, ignore=skip)
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def tree(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tree for one test to change."""
    root = tmp_path / "tree"
    shutil.copytree(pristine, root)
    return root


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's config on the tree at `root`."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "COLUMNS": "300", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def add_import(path: Path, line: str) -> None:
    """Write `line` after the module's `from __future__` import (the docstring stays first)."""
    text = path.read_text(encoding="utf-8")
    future = "from __future__ import annotations\n"
    assert future in text, f"{path} has no `{future.strip()}` to write the import after"
    path.write_text(text.replace(future, f"{future}\n{line}\n", 1), encoding="utf-8")


def broken_contracts(output: str) -> str:
    """The part of lint-imports' report after its summary, where broken contracts are named."""
    return output.split("Broken contracts", 1)[1] if "Broken contracts" in output else ""


def test_the_copied_tree_keeps_every_contract(pristine: Path) -> None:
    result = lint_imports(pristine)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_forbidden_import_breaks_its_contract(tree: Path, case: Case) -> None:
    add_import(tree / case.module, case.line)

    result = lint_imports(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = broken_contracts(result.stdout)
    assert case.contract in broken, result.stdout
    assert case.message in broken, result.stdout
    assert "1 broken" in result.stdout


def test_a_new_adapters_subpackage_must_say_what_it_imports(tree: Path) -> None:
    package = tree / "src/fin_agent/adapters/newvendor"
    package.mkdir()
    (package / "__init__.py").write_text('"""A vendor nobody has declared."""\n', encoding="utf-8")

    result = lint_imports(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = broken_contracts(result.stdout)
    assert ADAPTERS in broken
    assert "fin_agent.adapters.newvendor has no entry in this contract's children" in broken


def test_a_removed_app_subpackage_leaves_a_stale_entry_that_breaks_the_contract(
    tree: Path,
) -> None:
    shutil.rmtree(tree / "src/fin_agent/app/schedule")

    result = lint_imports(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "children.schedule names no module of fin_agent.app" in broken_contracts(result.stdout)


# -- the contract's rules on a graph built by hand ---------------------------------------------


def graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    """A graph of package `pkg` whose modules make `imports`; other names are external."""
    built = grimp.ImportGraph()
    for importer, imported in imports:
        for name in (importer, imported):
            if name not in built.modules:
                built.add_module(name, is_squashed=not name.startswith("pkg"))
        built.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    return built


def test_a_module_may_import_its_own_package_and_future() -> None:
    g = graph(("pkg.a", "pkg.b"), ("pkg.a", "__future__"), ("pkg", "pkg.a"))

    assert check_allowances(g, [Allowance("pkg", (), allow_standard_library=False)]).kept


def test_the_standard_library_is_allowed_only_when_asked() -> None:
    g = graph(("pkg.a", "json"), ("pkg", "pkg.a"))

    refused = check_allowances(g, [Allowance("pkg", (), allow_standard_library=False)])
    allowed = check_allowances(g, [Allowance("pkg", (), allow_standard_library=True)])

    assert [(v.importer, v.imported) for v in refused.violations] == [("pkg.a", "json")]
    assert allowed.kept


def test_the_standard_library_allowance_does_not_let_a_library_through() -> None:
    g = graph(("pkg.a", "redis"), ("pkg", "pkg.a"))

    report = check_allowances(g, [Allowance("pkg", (), allow_standard_library=True)])

    assert [v.imported for v in report.violations] == ["redis"]


def test_an_entry_covers_what_is_below_it_and_a_dollar_entry_only_itself() -> None:
    g = graph(("pkg.a", "pkg_other"), ("pkg.a", "pkg_other.deep"), ("pkg", "pkg.a"))

    below = check_allowances(g, [Allowance("pkg", ("pkg_other",), False)])
    only = check_allowances(g, [Allowance("pkg", ("pkg_other$",), False)])

    assert below.kept
    assert [v.imported for v in only.violations] == ["pkg_other.deep"]


def test_every_folder_of_checked_code_is_a_package_import_linter_can_see() -> None:
    """A folder without `__init__.py` is invisible to import-linter: its imports go unchecked."""
    folders = {
        path.parent
        for tree in (REPO / "src" / "fin_agent", REPO / "dashboard")
        for path in tree.rglob("*.py")
    }

    assert (
        sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists()) == []
    )


def test_a_source_missing_from_the_graph_breaks_the_contract_instead_of_passing() -> None:
    report = check_allowances(graph(("pkg", "json")), [Allowance("pkg.typo", (), True)])

    assert not report.kept
    assert report.problems == (
        "pkg.typo is not in the import graph: fix the contract's module name "
        "(a contract about a module that does not exist can never fail)",
    )
