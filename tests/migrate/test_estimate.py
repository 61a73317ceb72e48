"""The runtime estimate's arithmetic: every price is a fixed part plus a part linear in the bytes (the linear part
checked out of sample at 10 M decisions)."""

from __future__ import annotations

import pytest

from mandate.migrate.estimate import Calibration, RunRecord, copy_seconds, from_calibration, from_rehearsal

GB = 1_000_000_000
CALIBRATION = Calibration(sample_rows=20_000, sample_bytes=12_582_912, seconds=0.017)


def _tables(total: float) -> dict[str, int]:
    shares = {"decision_events": 0.4, "verdict_events": 0.2, "audit_timeline_entries": 0.4}
    return {table: int(total * share) for table, share in shares.items()}


@pytest.mark.parametrize("size", [0.5 * GB, 8 * GB])
def test_calibration_prices_a_database_twice_as_big_twice_as_dear(size: float) -> None:
    zero = from_calibration(_tables(0), 0, CALIBRATION)  # the fixed part: catalog changes, index creation, statements
    one = from_calibration(_tables(size), int(1.2 * size), CALIBRATION)
    two = from_calibration(_tables(2 * size), int(2.4 * size), CALIBRATION)
    assert two.migration_s - zero.migration_s == pytest.approx(2 * (one.migration_s - zero.migration_s))
    assert two.backup_s == pytest.approx(2 * one.backup_s)
    assert two.basis.startswith("calibration: copied 20000 decision events")


def test_a_faster_server_gets_a_shorter_estimate() -> None:
    slow = from_calibration(_tables(GB), 2 * GB, CALIBRATION)
    fast = from_calibration(_tables(GB), 2 * GB, Calibration(20_000, 12_582_912, 0.0085))
    assert fast.migration_s == pytest.approx(slow.migration_s / 2, rel=0.01)


def test_the_copy_time_is_the_median_on_the_servers_cpu_clock_and_the_fastest_on_the_wall_clock() -> None:
    """Copies of 10 ms in ms: one lucky copy (a CPU-second that did more) does not move a CPU-clock calibration, and
    neither do slow ones; on the wall clock other work only ever adds time, so bursts are dropped by the minimum."""
    steady = [0.010, 0.0101, 0.0099, 0.0102, 0.0098, 0.0100, 0.0101]
    assert copy_seconds(steady, "cpu") == 0.0100
    assert copy_seconds([*steady, 0.0076], "cpu") == pytest.approx(0.0100, rel=0.01)  # 24 % faster, once
    assert copy_seconds([*steady, 0.030, 0.030], "cpu") == pytest.approx(0.0100, rel=0.01)
    assert copy_seconds([0.030, 0.025, *steady, 0.040, 0.035, 0.050, 0.045, 0.050, 0.060, 0.070], "wall") == 0.0098


def test_a_rehearsal_is_scaled_by_the_size_of_what_008_rewrites() -> None:
    record = RunRecord("db", "2026-11-24", True, "rehearsed", db_bytes=5 * GB, rewritten_bytes=4 * GB,
                       phases={"10": 50.0}, migration_s=100.0, backup_s=40.0)  # fmt: skip
    same = from_rehearsal(4 * GB, 5 * GB, record)
    assert (same.migration_s, same.backup_s) == (100.0, 40.0)
    double = from_rehearsal(8 * GB, 10 * GB, record)
    assert (double.migration_s, double.backup_s, double.phases[10]) == (200.0, 80.0, 100.0)
    assert double.basis.startswith("rehearsal: the dry run of 2026-11-24 on db")
