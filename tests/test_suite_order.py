"""The suite's own scheduling (tests/conftest.py): the files it starts first exist, and go first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from conftest import LONGEST_FIRST, pytest_collection_modifyitems

TESTS = Path(__file__).resolve().parent


def test_the_longest_files_named_exist() -> None:
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    for name in LONGEST_FIRST:
        assert (TESTS / name).is_file(), f"tests/conftest.py LONGEST_FIRST names a missing file: {name}"


def test_longest_files_first_then_files_with_slow_tests_then_the_rest_in_order() -> None:
    def item(name: str, slow: bool = False) -> SimpleNamespace:
        return SimpleNamespace(path=TESTS / name, get_closest_marker=lambda mark: object() if slow else None)

    items = [
        item("test_a.py"),
        item("test_b.py", slow=True),
        item(LONGEST_FIRST[1]),
        item("test_c.py"),
        item(LONGEST_FIRST[0], slow=True),
        item(LONGEST_FIRST[1]),
        item("test_b.py"),  # a fast test in a file that has a slow one
    ]
    pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert [i.path.name for i in items] == [
        LONGEST_FIRST[0],
        LONGEST_FIRST[1],
        LONGEST_FIRST[1],
        "test_b.py",
        "test_b.py",
        "test_a.py",
        "test_c.py",
    ]
