"""The Mandate SDK: a thin client (sync and async) for agents. It sends decisions, reports outcomes and reads what
Mandate stored; it holds no governance logic. Its only dependency is httpx.

    from mandate.client import MandateClient

    with MandateClient("http://127.0.0.1:3000", organization_id=ORG, domain="config-management") as mandate:
        verdict = mandate.decide("file.write", "pre_commit", actor="pre-commit-agent",
                                 target="/data/config/production.yaml",
                                 context={"content_length": 2_500_000, "content_type": "yaml"},
                                 scope={"service": "config-writer", "agent": "pre-commit-agent",
                                        "environment": "production"})
        print(verdict.verdict, verdict.summary)   # PAUSE PAUSE by policy-pause-large-files-v1 (…)

A PAUSE can be waited out: `decide(..., on_pause="wait")` long-polls its approval request and, once approved,
resumes with it. Approvers use `mandate.approvals` (list, approve, reject).

See `docs/sdk.md`. Errors are drawn in `mandate.client._exceptions`.
"""

from mandate.client._approval import Approval, ApprovalEvent, ApprovalRequirement, ApprovalState
from mandate.client._approvals import Approvals, AsyncApprovals
from mandate.client._async_client import AsyncMandateClient
from mandate.client._client import MandateClient
from mandate.client._exceptions import (
    ApprovalConflict,
    ApprovalTimeout,
    Blocked,
    MandateAPIError,
    MandateConflict,
    MandateError,
    MandateNotFound,
    MandateUnavailable,
    MandateValidationError,
    Paused,
    Problem,
    Refused,
)
from mandate.client._guard import AsyncGuard, Guard, OnPause
from mandate.client._verdict import Verdict, VerdictName

__all__ = [
    "Approval",
    "ApprovalConflict",
    "ApprovalEvent",
    "ApprovalRequirement",
    "ApprovalState",
    "ApprovalTimeout",
    "Approvals",
    "AsyncApprovals",
    "AsyncGuard",
    "AsyncMandateClient",
    "Blocked",
    "Guard",
    "MandateAPIError",
    "MandateClient",
    "MandateConflict",
    "MandateError",
    "MandateNotFound",
    "MandateUnavailable",
    "MandateValidationError",
    "OnPause",
    "Paused",
    "Problem",
    "Refused",
    "Verdict",
    "VerdictName",
]

# Public classes report themselves as `mandate.client.X` (in reprs, tracebacks and docs), as httpx does.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
