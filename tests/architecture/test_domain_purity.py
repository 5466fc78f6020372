"""The domain reads no clock, randomness or environment, even through the modules it may import.

import-linter's allow-list lets the domain import `datetime` and `uuid` for their values; this
test fails on the members of those modules that read the outside world: `datetime.now`,
`date.today`, `uuid4`, an `astimezone()` that asks for the machine's local zone, and the like.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "fin_agent" / "domain"

# attribute or imported name -> what it reads; wherever it appears, whatever it is bound to
IMPURE = {
    "now": "the clock",
    "utcnow": "the clock",
    "today": "the clock",
    "fromtimestamp": "the local time zone",
    "utcfromtimestamp": "the local time zone",
    "uuid1": "the clock and the network card",
    "uuid4": "randomness",
    "getnode": "the network card",
}


def impure_uses(source: str, filename: str) -> list[str]:
    """Each use in `source` of a member that reads the outside world, as `file:line: what`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and node.attr in IMPURE:
            name, line = node.attr, node.lineno
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names if a.name in IMPURE]
            if not names:
                continue
            name, line = names[0], node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "astimezone"
            and not node.args
            and not node.keywords
        ):
            found.append(f"{filename}:{node.lineno}: astimezone() reads the local time zone")
            continue
        else:
            continue
        found.append(f"{filename}:{line}: {name} reads {IMPURE[name]}")
    return found


def domain_modules() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_the_domain_reads_no_clock_randomness_or_environment() -> None:
    modules = domain_modules()
    found = [
        use for path in modules for use in impure_uses(path.read_text(encoding="utf-8"), path.name)
    ]

    assert len(modules) >= 10  # the scan saw the domain, so an empty result means something
    assert found == []


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("datetime.now(UTC)", "x.py:1: now reads the clock"),
        ("moment = datetime.utcnow()", "x.py:1: utcnow reads the clock"),
        ("\ndate.today()", "x.py:2: today reads the clock"),
        ("from datetime import datetime as dt\ndt.today()", "x.py:2: today reads the clock"),
        ("datetime.fromtimestamp(0)", "x.py:1: fromtimestamp reads the local time zone"),
        ("uuid.uuid4()", "x.py:1: uuid4 reads randomness"),
        ("from uuid import uuid1", "x.py:1: uuid1 reads the clock and the network card"),
        ("moment.astimezone()", "x.py:1: astimezone() reads the local time zone"),
    ],
)
def test_impure_uses_are_reported_whatever_they_are_bound_to(source: str, reported: str) -> None:
    assert impure_uses(source, "x.py") == [reported]


@pytest.mark.parametrize(
    "source",
    [
        "uuid.uuid5(NAMESPACE, 'scan|2024-01-02')",
        "datetime(2024, 1, 2, 14, 30, tzinfo=UTC)",
        "moment.astimezone(UTC)",
        "from datetime import UTC, date, datetime, timedelta",
    ],
)
def test_pure_uses_of_the_allowed_modules_pass(source: str) -> None:
    assert impure_uses(source, "x.py") == []
