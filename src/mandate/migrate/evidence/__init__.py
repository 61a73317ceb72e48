"""The evidence a runbook run gives the checklist: one finding per evidence key of `checklist.yaml`
(`migrate/record.py` says what a finding is). Each checklist section has its function, `of_…(data, evidence)`; they
run in the checklist's order, and the last ones (the post-verification's summary, the rehearsal, the run as a whole)
read what the earlier ones found."""

from __future__ import annotations

from collections.abc import Callable

from mandate.migrate.evidence.migration import (
    of_baseline,
    of_constraint_tests,
    of_migration,
    of_migration_log,
    of_post_verification,
)
from mandate.migrate.evidence.outcome import of_rehearsal, of_smoke_tests, of_the_run
from mandate.migrate.evidence.preparation import of_backup, of_prechecks, of_preflight, of_services
from mandate.migrate.record import Data, Evidence

SECTIONS: tuple[Callable[[Data, Evidence], None], ...] = (
    of_preflight,
    of_services,
    of_prechecks,
    of_baseline,
    of_backup,
    of_migration,
    of_migration_log,
    of_post_verification,
    of_constraint_tests,
    of_smoke_tests,
    of_rehearsal,
    of_the_run,
)


def evidence(data: Data) -> Evidence:
    """One finding per evidence key used by the checklist."""
    e: Evidence = {}
    for section in SECTIONS:
        section(data, e)
    return e


__all__ = ["SECTIONS", "evidence"]
