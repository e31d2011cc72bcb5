"""Files written through a hidden temporary sibling: renamed when complete, removed on failure."""

from __future__ import annotations

import pytest

from aetherflow.core.atomic import PARTIAL_MARK, atomic_open, atomic_path, display_name, partial_name


def leftovers(directory) -> list[str]:
    return [p.name for p in directory.rglob("*") if PARTIAL_MARK in p.name]


def test_a_complete_write_lands_under_the_final_name_creating_directories(tmp_path):
    target = tmp_path / "new" / "dir" / "out.csv"
    with atomic_open(target) as fh:
        fh.write(b"a,b\n")
        [partial] = leftovers(tmp_path)
        assert not target.exists() and display_name(partial) == "out.csv"
    assert target.read_bytes() == b"a,b\n" and leftovers(tmp_path) == []


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_without_overwrite_an_existing_target_is_refused(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"first")
    with pytest.raises(FileExistsError), atomic_open(target, overwrite=False) as fh:
        fh.write(b"second")
    assert target.read_bytes() == b"first" and leftovers(tmp_path) == []
    with atomic_open(tmp_path / "fresh.csv", overwrite=False) as fh:
        fh.write(b"ok")
    assert (tmp_path / "fresh.csv").read_bytes() == b"ok"


def test_partial_names_are_hidden_unique_and_shown_by_their_final_name():
    first, second = partial_name("report.csv"), partial_name("report.csv")
    assert first != second and first.startswith(".report.csv.part-")
    assert display_name(f"/tmp/{first}") == "report.csv" and display_name("/tmp/plain.csv") == "plain.csv"
