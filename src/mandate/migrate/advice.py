"""What to do after the 008 runbook failed: whether the database changed, and the next commands, by the step that
failed and the error (a later migration refusing history, locked tables, a lost connection, …)."""

from __future__ import annotations

from pathlib import Path

from mandate.db.connect import connection_lost
from mandate.db.migration_preflight import TERMINATE_SESSION
from mandate.errors import CheckFailed, MigrationFailed
from mandate.migrate.runbook_options import VERSION
from mandate.migrate.transaction import TablesLocked


def next_steps(
    step: str,
    exc: BaseException,
    *,
    changed: bool,
    command: str,
    backup: Path | None,
    restore_command: str | None,
) -> list[str]:
    """The operator's next steps after `exc` in `step`; `changed`: the migration was committed; `backup`: the
    verified backup of this run, restored by `restore_command`."""
    rerun = f"when fixed, run the same command again: `{command}`"
    if changed:
        steps = ["do NOT restart the services on this database yet"]
        if backup is not None:
            steps.append(f"restore the verified backup: `mandate backup restore {backup}` (runs: `{restore_command}`)")
        steps.append(
            "or, if the failure is outside the database (e.g. the API), fix it and run `mandate migrate verify 008` and `mandate migrate smoke 008`"
        )
        return steps
    failed = exc.__cause__ if isinstance(exc, CheckFailed) else exc
    if isinstance(failed, MigrationFailed) and failed.version != VERSION:
        return [
            f"nothing was committed: the database is unchanged (still before 008) and the current Mandate server "
            f"can keep serving it; {failed.label} refuses rows of this database"
            + (f" ({failed.detail})" if failed.detail else ""),
            (f"do what PostgreSQL suggests: {failed.hint}" if failed.hint else "")
            or f"history the original server wrote must migrate as is: send this report to the Mandate "
            f"maintainers and install the release that fixes {failed.label}; do not edit historical rows",
            "then rehearse on a copy with `mandate migrate run 008 --dry-run`, and run the same command again: "
            f"`{command}`",
        ]
    if step == "pre-flight":
        return ["fix what the pre-flight names above (or give --stop-command / --allow-connections)", rerun]
    if step == "pre-migration checks":
        return [
            "apply the remedy each failed check names (--domain-slug NAME=slug, --domain-slug-file, "
            "--unattributed-to ORG_ID/DOMAIN, --scope-id-map FILE), then check with `mandate migrate check 008`",
            rerun,
        ]
    if step == "backup":
        return ["fix the backup location (space, permissions) or choose another --backup-dir", rerun]
    if isinstance(exc, TablesLocked):
        return [
            "nothing was committed (the transaction never got its locks); no restore is needed",
            "end the sessions named above (COMMIT or ROLLBACK in their application, or "
            f"`{TERMINATE_SESSION}`), or wait for them, or give a longer --lock-timeout",
            rerun,
        ]
    if connection_lost(exc):
        return [
            "the connection to the database was lost (the session was terminated, or the server restarted): the "
            "server rolled the transaction back, nothing was committed",
            rerun,
        ]
    return [
        "nothing was committed (one transaction, rolled back); no restore is needed",
        "rehearse with `mandate migrate run 008 --dry-run` on a copy to investigate; the report names the SQL "
        "error and the phase",
        rerun,
    ]
