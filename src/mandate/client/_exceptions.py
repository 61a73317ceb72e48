"""What the SDK raises. Two small trees, on purpose apart:

    MandateError                  the call to Mandate did not give an answer you can act on
    ├── MandateValidationError    400/422: the request was refused; `.problems` names each field
    ├── MandateNotFound           404: no such decision (or not in the organization/domain asked for)
    ├── MandateConflict           409: this (decision_id, stage) was already sent with a different body
    │   └── ApprovalConflict      409: an approval cannot move so now; `.code` says why (`expired`, `same_approver`…)
    ├── MandateUnavailable        503, connection refused/reset, timeouts — after the bounded retries
    └── MandateAPIError           any other error status, or an answer that is not Mandate's JSON

    Refused                       the action must not run because of the verdict (`.verdict` says why)
    ├── Blocked                   the verdict was BLOCK: the tool must not run
    └── Paused                    the verdict was PAUSE: the tool waits for human resolution
        └── ApprovalTimeout       decide(on_pause="wait") saw no resolution in time: the action must not run

`Refused` is deliberately not a `MandateError`: code that falls back when Mandate is unreachable
(`except MandateError: …`) must never swallow a BLOCK by accident — nor a PAUSE that nobody resolved, which is why
`decide(on_pause="wait")` raises a `Paused` (with the error as its `__cause__`) when it cannot finish waiting.

Every `MandateError` carries `status_code` (None when no HTTP answer arrived), the server's error `code` and
`message`, the `problems` it listed and the full JSON `body`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mandate.client._approval import Approval
    from mandate.client._verdict import Verdict


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, as the server names it: a dotted `field`, a `code` and a sentence."""

    field: str
    code: str
    message: str


class MandateError(Exception):
    """Base class of every error the SDK raises when a call does not give a usable answer."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        problems: tuple[Problem, ...] = (),
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.problems = problems
        self.body: dict[str, Any] = body if body is not None else {}


class MandateValidationError(MandateError):
    """The server refused the request (400 or 422) and stored nothing; `problems` lists every field at fault.

    For missing or unknown attribution (organization, domain, intent, stage) the body also carries
    `"verdict": "OBSERVE"` and the request is in the server's rejection log."""


class MandateNotFound(MandateError):
    """404: the decision (or spec, snapshot…) does not exist, or not in the organization/domain asked for."""


class MandateConflict(MandateError):
    """409: the same (decision_id, stage) was already received with a different body; decisions are immutable."""


class ApprovalConflict(MandateConflict):
    """409 from approve, reject or withdraw: the approval cannot move so now. `code` says why, for programs: the
    state it is in (`approved`, `rejected`, `withdrawn`, `expired`, `consumed`) or `requirement_needed`,
    `unknown_requirement`, `already_satisfied`, `same_approver`, `not_routed`."""


class MandateUnavailable(MandateError):
    """Mandate could not be reached or is not serving (503, e.g. while a migration runs), after every retry."""


class MandateAPIError(MandateError):
    """Any other error answer: an unexpected status, or a body that is not Mandate's JSON."""


class Refused(Exception):
    """The action must not run because of the verdict (a guard refused its tool, or `decide(on_pause="wait")` could
    not obtain an approval). `verdict` is the full `Verdict` with its explanation."""

    def __init__(self, verdict: Verdict, message: str | None = None) -> None:
        super().__init__(message or f"{verdict.verdict}: {verdict.summary}")
        self.verdict = verdict


class Blocked(Refused):
    """The verdict was BLOCK: the tool must not run."""


class Paused(Refused):
    """The verdict was PAUSE: the tool needs human resolution (`verdict.pause_requires`, `verdict.pause_expires_at`)."""


class ApprovalTimeout(Paused):
    """`decide(on_pause="wait")` waited `waited` seconds and the PAUSE is still unresolved (or Mandate could not be
    asked until then: the last error is the `__cause__`). The action must not run. `approval` is the request as last
    seen (None if it never was): withdraw it, or keep waiting with `approvals.wait`."""

    def __init__(self, verdict: Verdict, approval: Approval | None, waited: float) -> None:
        missing = ", ".join(approval.missing) if approval is not None and approval.missing else "an answer"
        super().__init__(
            verdict,
            f"PAUSE not resolved within {waited:g} s (still waiting for {missing}), so do not act: approval "
            f"{verdict.approval_id} of {verdict.summary}",
        )
        self.approval = approval
        self.waited = waited
