"""The SDK's public surface is exactly `__all__`, and every exported class presents itself as `mandate.client.X`."""

from __future__ import annotations

import subprocess
import sys

import mandate.client as sdk

EXPECTED = {
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
}


def test_all_is_the_documented_surface() -> None:
    assert set(sdk.__all__) == EXPECTED
    assert sorted(sdk.__all__) == sdk.__all__


def test_every_exported_name_exists_and_classes_belong_to_mandate_client() -> None:
    for name in sdk.__all__:
        member = getattr(sdk, name)
        if isinstance(member, type):
            assert member.__module__ == "mandate.client", name


def test_no_public_name_outside_all() -> None:
    public = {name for name in vars(sdk) if not name.startswith("_")}
    assert public == set(sdk.__all__)


def test_error_tree() -> None:
    assert issubclass(sdk.ApprovalConflict, sdk.MandateConflict)
    # A PAUSE nobody resolved in time is a refusal, never swallowed by a fallback for an unreachable Mandate.
    assert issubclass(sdk.ApprovalTimeout, sdk.Paused)
    assert not issubclass(sdk.ApprovalTimeout, sdk.MandateError)
    for error in (
        sdk.MandateValidationError,
        sdk.MandateNotFound,
        sdk.MandateConflict,
        sdk.MandateUnavailable,
        sdk.MandateAPIError,
    ):
        assert issubclass(error, sdk.MandateError)
    assert issubclass(sdk.Blocked, sdk.Refused)
    assert issubclass(sdk.Paused, sdk.Refused)
    # A BLOCK must never be swallowed by a fallback written for an unreachable Mandate.
    assert not issubclass(sdk.Refused, sdk.MandateError)
    assert issubclass(sdk.MandateError, Exception)


def test_importing_the_sdk_loads_no_server_code() -> None:
    code = (
        "import sys, mandate.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi', 'starlette', 'psycopg', 'uvicorn', 'pydantic', 'yaml'} "
        "or (m.startswith('mandate.') and not m.startswith('mandate.client'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
