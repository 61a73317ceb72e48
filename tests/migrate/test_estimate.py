"""The runtime estimate's arithmetic: linear in bytes for small databases, dearer per byte beyond the knee."""

from __future__ import annotations

import pytest

from mandate.migrate.estimate import Calibration, RunRecord, from_calibration, from_rehearsal, size_factor

GB = 1_000_000_000
CALIBRATION = Calibration(sample_rows=20_000, sample_bytes=12_582_912, seconds=0.017)


def _tables(total: float) -> dict[str, int]:
    return {
        "decision_events": int(total * 0.4),
        "verdict_events": int(total * 0.2),
        "audit_timeline_entries": int(total * 0.4),
    }


def test_size_factor_is_one_up_to_the_knee_then_grows_with_the_fourth_root() -> None:
    assert size_factor(0) == size_factor(GB) == size_factor(int(2.5 * GB)) == 1.0
    assert size_factor(40 * GB) == pytest.approx(2.0)  # (40 / 2.5) ** 0.25
    assert size_factor(10 * GB) < size_factor(20 * GB) < size_factor(40 * GB)


def test_a_small_database_is_priced_linearly() -> None:
    one = from_calibration(_tables(0.5 * GB), int(0.6 * GB), CALIBRATION)
    two = from_calibration(_tables(1.0 * GB), int(1.2 * GB), CALIBRATION)
    assert two.migration_s == pytest.approx(2 * one.migration_s, rel=0.01)
    assert two.backup_s == pytest.approx(2 * one.backup_s)
    assert "per byte" not in two.basis


def test_a_large_database_costs_more_per_byte_and_the_basis_says_so() -> None:
    ten = from_calibration(_tables(8 * GB), 10 * GB, CALIBRATION)
    twenty = from_calibration(_tables(16 * GB), 20 * GB, CALIBRATION)
    assert twenty.migration_s == pytest.approx(2 * 2**0.25 * ten.migration_s, rel=0.01)
    assert twenty.backup_s == pytest.approx(2 * 2**0.25 * ten.backup_s)
    assert f"×{size_factor(20 * GB):.2f} per byte" in twenty.basis


def test_a_rehearsal_is_scaled_by_size_and_by_the_per_byte_cost_of_the_size() -> None:
    record = RunRecord("db", "2026-11-24", True, "rehearsed", db_bytes=5 * GB, rewritten_bytes=4 * GB,
                       phases={"10": 50.0}, migration_s=100.0, backup_s=40.0)  # fmt: skip
    same = from_rehearsal(4 * GB, 5 * GB, record)
    assert (same.migration_s, same.backup_s) == (100.0, 40.0)
    double = from_rehearsal(8 * GB, 10 * GB, record)
    growth = size_factor(10 * GB) / size_factor(5 * GB)
    assert double.migration_s == pytest.approx(200.0 * growth)
    assert double.backup_s == pytest.approx(80.0 * growth)
    assert double.phases[10] == pytest.approx(100.0 * growth)
