"""The Spark driver's default heap: a quarter of what the process may use, read from the machine and
its control groups (a fake /sys/fs/cgroup and /proc/self/cgroup here)."""

from __future__ import annotations

from pathlib import Path

from costlake.engines.spark_memory import GIB, default_driver_memory, memory_limits


def _tree(tmp_path: Path, files: dict[str, str], membership: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    return root, proc


def test_a_v2_container_limit_sizes_the_heap(tmp_path: Path) -> None:
    root, proc = _tree(tmp_path, {"memory.max": "max", "box/memory.max": str(8 * GIB)}, "0::/box\n")
    limits = memory_limits(root, proc)
    assert limits[1:] == [None, None, 8 * GIB]  # root v2 unlimited, no v1, the group's own limit
    assert default_driver_memory([64 * GIB, *limits[1:]]) == "2g"


def test_a_v1_memory_group_is_read_and_no_limit_loses_to_the_machine(tmp_path: Path) -> None:
    files = {
        "memory/memory.limit_in_bytes": "9223372036854771712",  # v1's "no limit"
        "memory/jobs/a/memory.limit_in_bytes": str(40 * GIB),
    }
    root, proc = _tree(tmp_path, files, "9:pids:/\n4:memory:/jobs/a\n0::/\n")
    limits = memory_limits(root, proc)
    assert limits[1:] == [None, 9223372036854771712, 40 * GIB]
    assert default_driver_memory([24 * GIB, *limits[1:]]) == "6g"
    assert default_driver_memory([256 * GIB, *limits[1:]]) == "10g"


def test_nothing_readable_falls_back_to_2g(tmp_path: Path) -> None:
    limits = memory_limits(tmp_path / "none", tmp_path / "missing")
    assert limits[1:] == [None, None]
    assert default_driver_memory([None, *limits[1:]]) == "2g"
    assert default_driver_memory() == default_driver_memory(memory_limits())
