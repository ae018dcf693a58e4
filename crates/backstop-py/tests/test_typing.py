"""The type stubs (``_native.pyi``) and ``py.typed``: mypy sees the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is installed by .ci/run")

HERE = Path(__file__).resolve().parent / "typecheck"
# Strict, and no cache written into the working tree.
FLAGS = ["--strict", "--no-incremental", "--cache-dir=/dev/null"]


def mypy(path: Path) -> tuple[str, int]:
    out, err, status = api.run([*FLAGS, "--no-error-summary", str(path)])
    return out + err, status


def test_usage_file_type_checks_strictly() -> None:
    out, status = mypy(HERE / "usage.py")
    assert status == 0, out


def test_misuse_file_fails_at_each_marked_line_and_only_there() -> None:
    out, status = mypy(HERE / "misuse.py")
    assert status == 1, out
    source = (HERE / "misuse.py").read_text().splitlines()
    expected = {
        (i + 1, m.group(1))
        for i, line in enumerate(source)
        if (m := re.search(r"# error: ([\w-]+)", line))
    }
    found = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"misuse\.py:(\d+): error: .*\[([\w-]+)\]", out)
    }
    assert found == expected, out


def test_package_type_checks_strictly() -> None:
    out, err, status = api.run([*FLAGS, "-p", "backstop"])
    assert status == 0, out + err
