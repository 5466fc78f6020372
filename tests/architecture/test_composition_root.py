"""One composition root: only `fin_agent.app.bootstrap` builds adapters; the rest of the app sees
ports. Every app module outside it is parsed (`ast`, so a docstring or a comment naming an
adapter does not count, and an aliased or nested import does): none may import
`fin_agent.adapters`, nor call `isinstance` with a class defined there. The container the app
receives is typed by ports, and import-linter's app entries name adapters only for bootstrap.

Each check is shown to fail on a synthetic example first, so a green run means something.
"""

from __future__ import annotations

import ast
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path

from fin_agent.app.container import Container
from fin_agent.app.live.agent import LiveAgent

SRC = Path(__file__).resolve().parents[2] / "src"
APP = SRC / "fin_agent" / "app"
ADAPTERS = SRC / "fin_agent" / "adapters"
BOOTSTRAP = APP / "bootstrap"
PYPROJECT = SRC.parent / "pyproject.toml"
FORBIDDEN = "fin_agent.adapters"


def _is_adapter(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def _callee(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def adapter_imports(source: str, filename: str) -> list[str]:
    """Each import of `fin_agent.adapters` in `source`, as `file:line: module`: `import`,
    `from ... import`, `from fin_agent import adapters`, and `importlib.import_module("...")`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.stmt | ast.expr):
            continue
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and _callee(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            modules = [node.args[0].value]
        hit = next((m for m in modules if _is_adapter(m)), None)
        if hit is not None:
            found.append(f"{filename}:{node.lineno}: {hit}")
    return found


def isinstance_on(classes: set[str], source: str, filename: str) -> list[str]:
    """Each `isinstance(x, C)` in `source` whose `C` (or one of a tuple) is named in `classes`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            continue
        kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
        for kind in kinds:
            name = kind.attr if isinstance(kind, ast.Attribute) else getattr(kind, "id", None)
            if name in classes:
                found.append(f"{filename}:{node.lineno}: isinstance on {name}")
    return found


def adapter_classes() -> set[str]:
    """The public classes defined in `fin_agent.adapters`."""
    names: set[str] = set()
    for path in ADAPTERS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names |= {
            n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name[0] != "_"
        }
    return names


def app_modules_outside_bootstrap() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if BOOTSTRAP not in p.parents)


def adapter_modules_in(annotation: object) -> list[str]:
    """The modules under `fin_agent.adapters` that the types in `annotation` come from."""
    args = typing.get_args(annotation)
    if args or isinstance(annotation, types.UnionType):
        return [m for arg in args for m in adapter_modules_in(arg)]
    module = getattr(typing.get_origin(annotation) or annotation, "__module__", "")
    return [module] if _is_adapter(module) else []


def adapter_entries(config: Mapping[str, object]) -> dict[str, list[str]]:
    """For the import-linter contract over `fin_agent.app`'s children: each child other than
    bootstrap whose entry names an adapter module, with those modules."""
    tool = typing.cast(Mapping[str, typing.Any], config["tool"])
    contracts = tool["importlinter"]["contracts"]
    [app] = [c for c in contracts if c.get("container") == "fin_agent.app"]
    return {
        child: bad
        for child, allowed in app["children"].items()
        if child != "bootstrap" and (bad := [m for m in allowed if _is_adapter(m)])
    }


# -- the checks can fail ------------------------------------------------------------------------


def test_the_import_check_finds_every_form_of_adapter_import() -> None:
    source = '''"""Mentions fin_agent.adapters.memory in a docstring: not an import."""
import fin_agent.adapters.redis.bus as bus
from fin_agent.adapters.memory import FixedClock
from fin_agent import adapters
from fin_agent.ports.clock import Clock  # fin_agent.adapters in a comment: not an import
import importlib

def late():
    from fin_agent.adapters.system_clock import SystemClock
    return importlib.import_module("fin_agent.adapters.files.replay")
'''
    found = adapter_imports(source, "synthetic.py")

    assert found == [
        "synthetic.py:2: fin_agent.adapters.redis.bus",
        "synthetic.py:3: fin_agent.adapters.memory",
        "synthetic.py:4: fin_agent.adapters",
        "synthetic.py:9: fin_agent.adapters.system_clock",
        "synthetic.py:10: fin_agent.adapters.files.replay",
    ]
    assert adapter_imports("from fin_agent.adapterish import x\n", "near.py") == []


def test_the_isinstance_check_finds_a_concrete_adapter() -> None:
    source = "ok = isinstance(bus, (dict, mod.RedisStreamsEventBus)) or isinstance(c, FixedClock)\n"

    assert isinstance_on({"RedisStreamsEventBus", "FixedClock"}, source, "synthetic.py") == [
        "synthetic.py:1: isinstance on RedisStreamsEventBus",
        "synthetic.py:1: isinstance on FixedClock",
    ]


def test_the_type_check_finds_an_adapter_in_a_field_type() -> None:
    from fin_agent.adapters.broker.paper import PaperBroker
    from fin_agent.ports.clock import Clock

    assert adapter_modules_in(PaperBroker) == ["fin_agent.adapters.broker.paper"]
    assert adapter_modules_in(list[PaperBroker] | None) == ["fin_agent.adapters.broker.paper"]
    assert adapter_modules_in(Clock | None) == []


def test_the_contract_check_finds_an_app_entry_naming_an_adapter() -> None:
    config = {
        "tool": {
            "importlinter": {
                "contracts": [
                    {
                        "container": "fin_agent.app",
                        "children": {
                            "bootstrap": ["fin_agent.adapters"],
                            "http": ["aiohttp", "fin_agent.adapters.redis"],
                        },
                    }
                ]
            }
        }
    }

    assert adapter_entries(config) == {"http": ["fin_agent.adapters.redis"]}


# -- the tree holds them ------------------------------------------------------------------------


def test_no_app_module_outside_bootstrap_imports_an_adapter() -> None:
    modules = app_modules_outside_bootstrap()
    found = [
        hit
        for path in modules
        for hit in adapter_imports(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
    ]

    assert len(modules) > 40  # the walk saw the app
    assert found == [], "build adapters in fin_agent.app.bootstrap and hand the app a port"


def test_no_app_module_outside_bootstrap_branches_on_a_concrete_adapter() -> None:
    classes = adapter_classes()
    found = [
        hit
        for path in app_modules_outside_bootstrap()
        for hit in isinstance_on(classes, path.read_text(encoding="utf-8"), path.name)
    ]

    assert {"RedisStreamsEventBus", "FixedClock", "PaperBroker"} <= classes
    assert found == [], "give the container a port for the capability instead"


def test_the_containers_the_app_receives_are_typed_by_ports() -> None:
    for holder in (Container, LiveAgent):
        hints = typing.get_type_hints(holder)
        found = {name: m for name, hint in hints.items() if (m := adapter_modules_in(hint))}

        assert found == {}, f"{holder.__name__} fields typed by adapters"
    assert "Orders" in repr(typing.get_type_hints(Container)["orders"])


def test_only_bootstraps_import_contract_entry_names_adapters() -> None:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))

    assert adapter_entries(config) == {}
