"""The Spark driver's default heap: a quarter of what the process may use, read from the machine and
its control groups (a fake /sys/fs/cgroup and /proc/self/cgroup here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from costlake.engines import spark_memory
from costlake.engines.spark_memory import GIB, default_driver_memory, memory_limits
from costlake.settings import Settings

NO_LIMIT = "9223372036854771712"  # cgroup v1's spelling of none


def _tree(tmp_path: Path, files: dict[str, str], membership: bytes) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_bytes(membership)
    return root, proc


def test_a_v2_limit_on_the_group_or_any_group_above_it_bounds_the_heap(tmp_path: Path) -> None:
    files = {
        "memory.max": "max",
        "user.slice/memory.max": str(4 * GIB),
        "user.slice/u/s.scope/memory.max": "max",
    }
    root, proc = _tree(tmp_path, files, b"0::/user.slice/u/s.scope\n")
    limits = memory_limits(root, proc)
    assert sorted(n for n in limits[1:] if n) == [4 * GIB]  # the slice's, two levels up
    assert default_driver_memory([64 * GIB, *limits[1:]]) == "1g"


def test_a_v1_memory_group_and_its_parents_are_read_and_no_limit_loses_to_the_machine(tmp_path: Path) -> None:
    """A Slurm-style tree: the job and the step limit the task, whose own group does not."""
    files = {
        "memory/memory.limit_in_bytes": NO_LIMIT,
        "memory/slurm/job_7/memory.limit_in_bytes": str(40 * GIB),
        "memory/slurm/job_7/step_0/memory.limit_in_bytes": str(36 * GIB),
        "memory/slurm/job_7/step_0/task_0/memory.limit_in_bytes": NO_LIMIT,
    }
    root, proc = _tree(tmp_path, files, b"9:pids:/\n4:cpu,memory:/slurm/job_7/step_0/task_0\n0::/\n")
    limits = memory_limits(root, proc)
    assert sorted(n for n in limits[1:] if n) == [36 * GIB, 40 * GIB, int(NO_LIMIT), int(NO_LIMIT)]
    assert default_driver_memory([24 * GIB, *limits[1:]]) == "6g"
    assert default_driver_memory([256 * GIB, *limits[1:]]) == "9g"


def test_the_heap_is_the_nearest_whole_gib_of_a_quarter_never_below_1g_nor_above_16g() -> None:
    sizes = {1.5: "1g", 5.9: "1g", 6: "2g", 9: "2g", 10: "3g", 23.5: "6g", 64: "16g", 1000: "16g"}
    assert {n: default_driver_memory([int(n * GIB)]) for n in sizes} == sizes


def test_odd_cgroup_files_are_unknown_limits_not_errors(tmp_path: Path) -> None:
    files = {"memory.max": "\u00b2", "a/memory.max": " 12x ", "b\udcff/memory.max": str(8 * GIB)}
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    proc = tmp_path / "proc-self-cgroup"
    proc.write_bytes(b"0::/a\n\n0::/b\xff\ngarbage\n")  # a group name may hold any byte but a slash
    limits = memory_limits(root, proc)
    assert sorted(n for n in limits[1:] if n) == [8 * GIB]


def test_nothing_readable_falls_back_to_2g(tmp_path: Path) -> None:
    limits = memory_limits(tmp_path / "none", tmp_path / "missing")
    assert limits[1:] == [None, None]
    assert default_driver_memory([None, *limits[1:]]) == "2g"
    assert default_driver_memory() == default_driver_memory(memory_limits())


@pytest.mark.spark
def test_a_session_started_without_the_setting_gets_the_machines_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The properties a session starts with: the size read from the control groups (a fake 3 GiB
    container here, under any real machine), or the setting when it is given."""
    from costlake.engines.spark_engine import _start_conf

    root, proc = _tree(tmp_path, {"memory.max": str(3 * GIB)}, b"0::/\n")
    monkeypatch.setattr(spark_memory, "CGROUP_ROOT", root)
    monkeypatch.setattr(spark_memory, "MEMBERSHIP", proc)
    assert _start_conf(Settings(warehouse="w"))["spark.driver.memory"] == "1g"
    assert _start_conf(Settings(warehouse="w", spark_driver_memory="5g"))["spark.driver.memory"] == "5g"


def test_the_setting_takes_a_size_as_spark_reads_one_and_blank_is_the_default() -> None:
    for given, kept in (("", None), ("  ", None), ("6g", "6g"), ("4096M", "4096M"), ("8gb", "8gb")):
        assert Settings(warehouse="w", spark_driver_memory=given).spark_driver_memory == kept
    for bad in ("0", "0g", "abc", "1.5g", "-1g", "6 g"):
        with pytest.raises(ValidationError, match="spark_driver_memory must be a size such as 6g"):
            Settings(warehouse="w", spark_driver_memory=bad)
