"""import-linter contract types that allow-list imports: a module imports only what is named.

import-linter's own contracts forbid named imports, and a deny-list lets the next import through.
These two allow instead (pyproject.toml registers them under `contract_types`):

- `allowed_imports`: every module in `source_modules` (and below them) imports only modules in
  the sources, the entries of `allowed_modules` and, with `allow_standard_library = true`, any
  standard-library module.
- `allowed_imports_per_child`: the same for each direct child (module or subpackage) of
  `container`, each with the shared `allowed_modules` plus its own entry in `children`. A child
  with no entry, or an entry naming no child, breaks the contract: a new subpackage has to say
  what it imports before it can import anything.

An entry names a module and every module below it (`fin_agent.domain`); an entry ending in `$`
names that module only (`fin_agent$`). Third-party and standard-library packages are named by
their top-level name (`redis`, `collections`). `from __future__ import ...` is always allowed.
Only direct imports are checked: what an allowed module imports is its own contract's business.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output

__all__ = ["Allowance", "AllowedImportsContract", "AllowedImportsPerChildContract"]

ALWAYS_ALLOWED = frozenset({"__future__"})
_REPORT = "allow_list_report"


@dataclass(frozen=True, slots=True)
class Allowance:
    """What the modules of one source may import, and how to say what they may not."""

    source: str
    allowed: tuple[str, ...]
    allow_standard_library: bool
    package: bool = True  # False: the source module alone, not the modules below it

    def covers(self, module: str) -> bool:
        """Whether `module` belongs to this source (the source itself or, a package, below it)."""
        return module == self.source or (self.package and module.startswith(self.source + "."))

    def permits(self, imported: str, graph: ImportGraph) -> bool:
        """Whether a module of this source may import `imported` directly."""
        if self.covers(imported) or imported in ALWAYS_ALLOWED:
            return True
        if any(_matches(entry, imported) for entry in self.allowed):
            return True
        return (
            self.allow_standard_library
            and graph.is_module_squashed(imported)
            and imported.split(".")[0] in sys.stdlib_module_names
        )


@dataclass(frozen=True, slots=True)
class Violation:
    """One import an allowance does not permit, where it is written."""

    source: str
    importer: str
    imported: str
    line_numbers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything that breaks an allow-list contract: bad imports and configuration drift."""

    violations: tuple[Violation, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def kept(self) -> bool:
        return not self.violations and not self.problems


def _matches(entry: str, module: str) -> bool:
    if entry.endswith("$"):
        return module == entry[:-1]
    return module == entry or module.startswith(entry + ".")


def _names(value: object, option: str) -> tuple[str, ...]:
    """A contract option that must be a list of module names."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    raise fields.ValidationError(f"{option} must be a list of module names, got {value!r}")


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise fields.ValidationError(f"allow_standard_library must be true or false: {value!r}")
    return value


def check_allowances(graph: ImportGraph, allowances: Iterable[Allowance]) -> Report:
    """Every direct import of every module of each allowance's source, checked against it."""
    violations: list[Violation] = []
    problems: list[str] = []
    for allowance in allowances:
        if allowance.source not in graph.modules:
            problems.append(
                f"{allowance.source} is not in the import graph: fix the contract's module name "
                "(a contract about a module that does not exist can never fail)"
            )
            continue
        modules = {allowance.source}
        if allowance.package:
            modules |= graph.find_descendants(allowance.source)
        for importer in sorted(modules):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if allowance.permits(imported, graph):
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = tuple(sorted(d["line_number"] for d in details))
                violations.append(Violation(allowance.source, importer, imported, lines))
    return Report(tuple(violations), tuple(problems))


def _check(report: Report) -> ContractCheck:
    return ContractCheck(kept=report.kept, metadata={_REPORT: report})


def _render(check: ContractCheck) -> None:
    report = check.metadata.get(_REPORT)
    if not isinstance(report, Report):  # pragma: no cover - only our own checks reach here
        raise TypeError("an allow-list contract rendered a check it did not make")
    for problem in report.problems:
        output.print_error(problem)
        output.new_line()
    for violation in report.violations:
        lines = ", ".join(f"l.{n}" for n in violation.line_numbers) or "line unknown"
        output.print_error(
            f"{violation.importer} may not import {violation.imported} ({lines}): "
            f"{violation.source} imports only what its contract allows; remove the import, "
            "or add it to the contract in pyproject.toml if it belongs to the layer",
            bold=False,
        )
    output.new_line()


class AllowedImportsContract(Contract):
    """`allowed_imports`: the source modules import only the allowed modules (see the module)."""

    type_name = "allowed_imports"

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    allow_standard_library = fields.BooleanField(required=False, default=False)

    def validate(self) -> None:
        options = vars(self)
        allowed = _names(options["allowed_modules"], "allowed_modules")
        stdlib = _flag(options["allow_standard_library"])
        self._allowances = tuple(
            Allowance(source, allowed, stdlib)
            for source in _names(options["source_modules"], "source_modules")
        )

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        return _check(check_allowances(graph, self._allowances))

    def render_broken_contract(self, check: ContractCheck) -> None:
        _render(check)


class ChildrenField(fields.Field[dict[str, tuple[str, ...]]]):
    """A table from a child's name to the extra modules it may import."""

    def parse(self, raw_data: object) -> dict[str, tuple[str, ...]]:
        if not isinstance(raw_data, Mapping):
            raise fields.ValidationError(
                "children must be a table: child name = [modules it may import]"
            )
        return {str(name): _names(value, f"children.{name}") for name, value in raw_data.items()}


class AllowedImportsPerChildContract(Contract):
    """`allowed_imports_per_child`: each child of `container` imports only its allowance."""

    type_name = "allowed_imports_per_child"

    container = fields.StringField()
    allowed_modules = fields.ListField(subfield=fields.StringField(), required=False, default=[])
    allow_standard_library = fields.BooleanField(required=False, default=False)
    children = ChildrenField()

    def validate(self) -> None:
        options = vars(self)
        container = options["container"]
        children = options["children"]
        if not isinstance(container, str) or not isinstance(children, dict):
            raise fields.ValidationError("container must be a module name, children a table")
        self._container: str = container
        self._shared = _names(options["allowed_modules"], "allowed_modules")
        self._stdlib = _flag(options["allow_standard_library"])
        self._children: dict[str, tuple[str, ...]] = children

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        if self._container not in graph.modules:
            return _check(
                Report(problems=(f"container {self._container} is not in the import graph",))
            )
        present = {child.rsplit(".", 1)[1] for child in graph.find_children(self._container)}
        problems = [
            f"{self._container}.{name} has no entry in this contract's children: add "
            f"`{name} = [...]` naming what it may import beyond the shared allowance"
            for name in sorted(present - self._children.keys())
        ] + [
            f"children.{name} names no module of {self._container}: remove or rename the entry"
            for name in sorted(self._children.keys() - present)
        ]
        # the container's own module (its __init__) gets the shared allowance only
        allowances = [
            Allowance(self._container, self._shared, self._stdlib, package=False),
            *(
                Allowance(f"{self._container}.{name}", self._shared + extra, self._stdlib)
                for name, extra in sorted(self._children.items())
                if name in present
            ),
        ]
        report = check_allowances(graph, allowances)
        return _check(Report(report.violations, tuple(problems) + report.problems))

    def render_broken_contract(self, check: ContractCheck) -> None:
        _render(check)
