"""Which version of a spec is in force — the one home of this rule (MANDATE.md §1, §3a).

Of the versions of one spec_id, in creation order, the one in force is the newest active version, else the newest
version: policies are compiled against it when a snapshot is loaded (`cache`) or checked (`plan`), and the API
shows it when no version is asked for. The active *snapshot* of a domain is its highest version; that rule is SQL,
and its one home is `db/governance.py` (`ACTIVE_SNAPSHOT_ORDER`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from mandate.evaluator import Spec

_V = TypeVar("_V")


def version_in_force(versions: Sequence[_V], active: Callable[[_V], bool]) -> _V:
    """Of `versions` (one spec_id's, oldest first, at least one), the newest active one, else the newest."""
    return next((v for v in reversed(versions) if active(v)), versions[-1])


def specs_in_force(specs: Iterable[Spec], active: Callable[[Spec], bool]) -> dict[str, Spec]:
    """Per spec_id, the version of `specs` (oldest first) in force (`version_in_force`)."""
    versions: dict[str, list[Spec]] = {}
    for spec in specs:
        versions.setdefault(spec.spec_id, []).append(spec)
    return {spec_id: version_in_force(found, active) for spec_id, found in versions.items()}
