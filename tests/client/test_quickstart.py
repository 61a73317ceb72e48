"""docs/quickstart.md works as written: its bundle applies, and its agent code prints what the page says."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mandate.apply import apply_bundle
from mandate.governance.bundle import parse_bundle
from tests.web.conftest import issue_token, start_server

QUICKSTART = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", QUICKSTART.read_text(), flags=re.MULTILINE | re.DOTALL)


@pytest.fixture
def quickstart_server(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (bundle_text,) = blocks("yaml")
    with psycopg.connect(db_url, autocommit=True) as conn:
        first = apply_bundle(conn, parse_bundle(bundle_text, "governance/finance.yaml"))
        again = apply_bundle(conn, parse_bundle(bundle_text, "governance/finance.yaml"))
    assert not first.nothing_to_apply and again.nothing_to_apply
    with psycopg.connect(db_url) as conn:
        (organization_id,) = conn.execute("SELECT organization_id::text FROM mandate.organizations").fetchone() or ("",)
    monkeypatch.setenv(
        "MANDATE_API_TOKEN", issue_token(db_url, organization_id=organization_id)
    )  # as docs/quickstart.md says
    server, thread, url = start_server(db_url)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_the_quickstart_agent_prints_what_the_page_shows(quickstart_server: str) -> None:
    (code,) = blocks("python")
    *_, expected = blocks("text")
    assert "http://127.0.0.1:3000" in code
    printed = io.StringIO()

    snippet = compile(code.replace("http://127.0.0.1:3000", quickstart_server), str(QUICKSTART), "exec")
    with contextlib.redirect_stdout(printed):
        exec(snippet, {})  # the documented snippet, as a reader would run it

    assert printed.getvalue() == expected
