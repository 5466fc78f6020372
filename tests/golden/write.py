"""Write the missing golden of each event type's current version; never touch an existing one.

Run from the repository root after making a new version (README.md says when):

    PYTHONPATH=tests .venv/bin/python -m golden.write

then review the new file and commit it. An existing golden that no longer matches is reported,
not rewritten: the wire format of a released version does not change.
"""

from __future__ import annotations

import sys

from fin_agent.adapters.codec.event_codec import EventCodec, default_registry
from golden.files import (
    every_golden,
    golden_path,
    load,
    release,
    released,
    released_name,
    render,
)
from golden.samples import SAMPLES, TRACE


def main() -> int:
    """Write what is missing; exit 1 when a sample is missing or a golden no longer matches."""
    codec = EventCodec(default_registry())
    status = 0
    for cls in default_registry().classes:
        sample = SAMPLES.get(cls.TYPE)
        if sample is None or type(sample) is not cls:
            print(f"{cls.TYPE}: add its representative event to tests/golden/samples.py")
            status = 1
            continue
        entry = codec.encode(sample, trace=TRACE)
        path = golden_path(cls.TYPE, cls.VERSION)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(entry), encoding="utf-8")
            release(path)
            print(f"wrote {path}")
        elif load(path).entry != entry:
            print(f"{path} no longer matches: make a new version, do not edit it")
            status = 1
    manifest = released()
    for golden in every_golden():  # a golden checked in by hand (an older shape) is released too
        if released_name(golden.path) not in manifest:
            release(golden.path)
            print(f"released {golden.path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
