"""The guard for agent tools, against a real server: BLOCK stops the tool, PAUSE stops it unless told otherwise,
ALLOW runs it, and every use leaves an outcome on the decision's timeline."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from mandate.client import AsyncMandateClient, Blocked, MandateClient, Paused, Verdict
from mandate.demo import scenarios as s
from tests.client.conftest import DemoServer
from tests.client.test_errors import MigrationLockHeld, wait_for_migrating

DROP = s.CRITICAL_DROP_WITHOUT_BACKUP
BIG_WRITE = s.LARGE_PRODUCTION_WRITE
SMALL_WRITE = dataclasses.replace(BIG_WRITE, context={"content_length": 1000, "content_type": "yaml"}, expected="ALLOW")


@pytest.fixture
def client(demo_server: DemoServer) -> Iterator[MandateClient]:
    with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN) as c:
        yield c


def outcomes(client: MandateClient, verdict: Verdict) -> list[dict[str, Any]]:
    return [e["details"] for e in client.get_timeline(verdict.decision_id) if e["summary"].startswith("outcome")]


def test_block_raises_and_the_tool_never_runs(client: MandateClient) -> None:
    ran = []

    with pytest.raises(Blocked) as caught, client.guard(DROP.intent, DROP.stage, **DROP.decide_args()):
        ran.append("dropped")

    assert ran == []
    verdict = caught.value.verdict
    assert verdict.blocked and verdict.winning_policy_id == "policy-block-unbackedup-drops-v1"
    assert str(caught.value).startswith("BLOCK: BLOCK by policy-block-unbackedup-drops-v1")
    assert outcomes(client, verdict) == [{"outcome": "refused", "success": False, "verdict": "BLOCK"}]


def test_block_is_not_swallowed_by_a_fallback_for_unavailability(client: MandateClient) -> None:
    from mandate.client import MandateError

    with pytest.raises(Blocked):
        try:
            with client.guard(DROP.intent, DROP.stage, **DROP.decide_args()):
                pass
        except MandateError:
            pytest.fail("a BLOCK is not a MandateError")


def test_pause_raises_by_default(client: MandateClient) -> None:
    ran = []

    with pytest.raises(Paused) as caught, client.guard(BIG_WRITE.intent, BIG_WRITE.stage, **BIG_WRITE.decide_args()):
        ran.append("written")

    assert ran == []
    assert caught.value.verdict.pause_requires == ("compliance-review",)
    assert outcomes(client, caught.value.verdict) == [{"outcome": "refused", "success": False, "verdict": "PAUSE"}]


def test_pause_proceeds_when_told_to(client: MandateClient) -> None:
    guard = client.guard(BIG_WRITE.intent, BIG_WRITE.stage, **BIG_WRITE.decide_args(), on_pause="proceed")

    with guard as verdict:
        assert verdict.paused

    assert guard.verdict == verdict
    assert outcomes(client, verdict) == [{"outcome": "succeeded", "success": True}]


@pytest.mark.parametrize("approve", [True, False])
def test_pause_callback_decides(client: MandateClient, approve: bool) -> None:
    seen: list[Verdict] = []

    def approver(verdict: Verdict) -> bool:
        seen.append(verdict)
        return approve

    ran = []
    guard = client.guard(BIG_WRITE.intent, BIG_WRITE.stage, **BIG_WRITE.decide_args(), on_pause=approver)
    if approve:
        with guard:
            ran.append("written")
    else:
        with pytest.raises(Paused), guard:
            ran.append("written")

    assert [v.verdict for v in seen] == ["PAUSE"]
    assert ran == (["written"] if approve else [])


def test_allow_runs_the_tool_and_reports_success(client: MandateClient) -> None:
    ran = []

    with client.guard(SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args()) as verdict:
        ran.append("written")

    assert ran == ["written"] and verdict.allowed
    timeline = client.get_timeline(verdict.decision_id)
    assert [e["summary"] for e in timeline] == ["decision received", verdict.summary, "outcome reported: succeeded"]
    assert timeline[-1]["details"] == {"outcome": "succeeded", "success": True}


def test_a_failing_tool_is_reported_with_its_exception_type_and_the_error_propagates(client: MandateClient) -> None:
    guard = client.guard(SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args())

    with pytest.raises(PermissionError, match="secret path"), guard:
        raise PermissionError("secret path")

    assert guard.verdict is not None
    assert outcomes(client, guard.verdict) == [{"outcome": "failed", "success": False, "error_type": "PermissionError"}]


def test_report_false_writes_no_outcome(client: MandateClient) -> None:
    with client.guard(SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args(), report=False) as verdict:
        pass

    assert outcomes(client, verdict) == []


def test_decorator_asks_with_the_tools_arguments_each_call(client: MandateClient) -> None:
    written: list[str] = []

    @client.guard(
        "file.write",
        "pre_commit",
        actor="pre-commit-agent",
        scope=BIG_WRITE.scope,
        context=lambda path, text: {"content_length": len(text), "content_type": path.rsplit(".", 1)[-1]},
        target=lambda path, text: path,
    )
    def write_file(path: str, text: str) -> int:
        written.append(path)
        return len(text)

    assert write_file("/data/config/small.yaml", "a: 1\n") == 5
    with pytest.raises(Paused) as caught:
        write_file("/data/config/huge.yaml", text="x" * 2_000_000)

    assert written == ["/data/config/small.yaml"]
    assert write_file.__name__ == "write_file"
    paused = caught.value.verdict
    assert client.get_decision(paused.decision_id)["target"] == "/data/config/huge.yaml"
    listed = list(client.list_decisions(intent="file.write"))
    assert len(listed) == 2 and len({d["decision_id"] for d in listed}) == 2


def test_decorated_tool_failure_is_reported(client: MandateClient) -> None:
    guard = client.guard(SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args())

    @guard
    def broken() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        broken()

    assert guard.verdict is not None
    assert outcomes(client, guard.verdict) == [{"outcome": "failed", "success": False, "error_type": "RuntimeError"}]


def test_a_failed_outcome_report_is_logged_not_raised(
    client: MandateClient, demo_server: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    lock: MigrationLockHeld | None = None
    with (
        MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN, retries=0) as fragile,
        caplog.at_level(logging.WARNING, logger="mandate.client"),
    ):
        try:
            with fragile.guard(SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args()) as verdict:
                lock = MigrationLockHeld(demo_server.database_url)  # Mandate stops answering mid-tool
                wait_for_migrating(fragile)
        finally:
            if lock is not None:
                lock.release()

    assert verdict.allowed
    assert "could not report outcome 'succeeded'" in caplog.text
    assert outcomes(client, verdict) == []


def test_misuse_is_refused_early(client: MandateClient) -> None:
    with pytest.raises(ValueError, match="on_pause"):
        client.guard(DROP.intent, DROP.stage, **DROP.decide_args(), on_pause="ignore")  # type: ignore[arg-type]  # the misuse
    dynamic = client.guard("file.write", "pre_commit", **{**SMALL_WRITE.decide_args(), "context": lambda: {}})
    with pytest.raises(TypeError, match="use the guard as a decorator"), dynamic:
        pass

    async def tool() -> None:
        pass

    with pytest.raises(TypeError, match=r"AsyncMandateClient\.guard"):
        client.guard(DROP.intent, DROP.stage, **DROP.decide_args())(tool)


def test_async_guard(demo_server: DemoServer) -> None:
    ran: list[str] = []

    async def run() -> tuple[Verdict, Verdict]:
        async with AsyncMandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN) as c:
            with pytest.raises(Blocked) as caught:
                async with c.guard(DROP.intent, DROP.stage, **DROP.decide_args()):
                    ran.append("dropped")

            @c.guard(SMALL_WRITE.intent, SMALL_WRITE.stage, **SMALL_WRITE.decide_args())
            async def write() -> str:
                ran.append("written")
                return "ok"

            assert await write() == "ok"

            paused_guard = c.guard(BIG_WRITE.intent, BIG_WRITE.stage, **BIG_WRITE.decide_args(), on_pause="proceed")
            async with paused_guard as paused:
                ran.append("written anyway")

            def sync_tool() -> None:
                pass

            with pytest.raises(TypeError, match="not a coroutine function"):
                c.guard(DROP.intent, DROP.stage, **DROP.decide_args())(sync_tool)  # type: ignore[arg-type]  # misuse
            return caught.value.verdict, paused

    blocked, paused = asyncio.run(run())

    assert ran == ["written", "written anyway"]
    assert blocked.blocked and paused.paused
    with MandateClient(demo_server.url) as c:
        assert outcomes(c, blocked) == [{"outcome": "refused", "success": False, "verdict": "BLOCK"}]
        assert outcomes(c, paused) == [{"outcome": "succeeded", "success": True}]
        written = [d for d in c.list_decisions(organization_id=s.ORGANIZATION_ID) if d["verdict"] == "ALLOW"]
        assert len(written) == 1
