"""The Research page's read model: every study summary under data_dir/optimize, newest first;
a broken one is named, not skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fin_agent.app.http.research import studies


def test_studies_are_read_newest_first_and_a_broken_one_says_why(tmp_path: Path) -> None:
    for name, mtime in (("old", 1_000), ("new", 2_000)):
        path = tmp_path / name / "summary.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"study": name, "trials": []}), encoding="utf-8")
        os.utime(path, (mtime, mtime))
    broken = tmp_path / "broken" / "summary.json"
    broken.parent.mkdir()
    broken.write_text("{not json", encoding="utf-8")
    os.utime(broken, (500, 500))
    found = studies(tmp_path)
    assert [s["study"] for s in found] == ["new", "old", "broken"]
    assert found[2]["error"].startswith(f"{broken} cannot be read: Expecting property name")


def test_no_folder_means_no_study(tmp_path: Path) -> None:
    assert studies(tmp_path / "optimize") == []
