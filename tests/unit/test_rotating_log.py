"""The services' log files under `make run`: rotated by size, never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

from deploy.local.stack import RotatingLog


def test_a_full_log_moves_to_1_and_older_ones_shift_until_the_last_backup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "routing-8001.log"
    log = RotatingLog(path, max_bytes=100, backups=2)
    for n in range(40):
        log.write(f"line {n:02d} of the service\n".encode())  # 23 bytes each: 4 to a file
    log.close()

    files = [path, path.with_name(f"{path.name}.1"), path.with_name(f"{path.name}.2")]
    assert all(f.exists() for f in files)
    assert not path.with_name(f"{path.name}.3").exists()
    assert all(len(f.read_bytes()) <= 100 for f in files)
    kept = [line for f in reversed(files) for line in f.read_text().splitlines()]
    assert kept == [f"line {n:02d} of the service" for n in range(40 - len(kept), 40)]


def test_lines_are_not_cut_at_the_rotation(tmp_path: Path) -> None:
    path = tmp_path / "intake-8000.log"
    log = RotatingLog(path, max_bytes=30, backups=2)
    log.write(b"first line\n")
    log.write(b"second line\nthe beginning of a third")  # over the limit: a new file
    log.write(b" and its end\n")  # over again, but it ends the line its file holds
    log.write(b"fourth\n")
    log.close()
    assert path.with_name(f"{path.name}.2").read_text() == "first line\n"
    assert path.with_name(f"{path.name}.1").read_text() == (
        "second line\nthe beginning of a third and its end\n"
    )
    assert path.read_text() == "fourth\n"


def test_a_new_run_rotates_the_previous_one_and_an_empty_log_is_not_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deadline-8002.log"
    first = RotatingLog(path)
    first.rotate()
    assert not path.with_name(f"{path.name}.1").exists()
    first.write(b"run 1\n")
    first.close()

    second = RotatingLog(path)
    second.rotate()
    second.write(b"run 2\n")
    second.close()
    assert path.with_name(f"{path.name}.1").read_text() == "run 1\n"
    assert path.read_text() == "run 2\n"


def test_it_copies_what_a_process_writes_to_its_pipe(tmp_path: Path) -> None:
    path = tmp_path / "notifier-8003.log"
    log = RotatingLog(path)
    read_end, write_end = os.pipe()
    copier = log.follow(os.fdopen(read_end, "rb"))
    os.write(write_end, b'{"message": "service started"}\n')
    os.close(write_end)
    copier.join(timeout=5)
    log.close()
    assert path.read_text() == '{"message": "service started"}\n'
