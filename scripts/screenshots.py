"""Regenerate the UI screenshots in docs/images/ (docs/ui.md shows them): a command, never a side effect of tests.

    .venv/bin/python scripts/screenshots.py            # write docs/images/*.png
    .venv/bin/python scripts/screenshots.py --serve    # only serve the demo site and print its URL (Ctrl-C stops)

It starts an embedded PostgreSQL in a temporary directory, applies the migrations, the demo governance and the
browser tests' demo decisions (tests/e2e/seed.py), serves Mandate on a loopback port and drives Debian's Chromium
(`apt-get install -y chromium`) through Playwright at 1440×900 and 390×844. Nothing outside docs/images/ changes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.e2e.seed: the same demo data the browser tests use

from tests.e2e.seed import CS, seeded_server  # noqa: E402

from mandate.migrate.runner import Runner  # noqa: E402

IMAGES = ROOT / "docs" / "images"
WIDE = (1440, 900)
PHONE = (390, 844)
SHOTS = [  # (file, path, viewport); "{block}" is a BLOCK decision of the demo
    ("decisions.png", "/?limit=15", WIDE),
    ("decision-block.png", "/decisions/{block}", WIDE),
    ("overview.png", "/overview", WIDE),
    ("policy.png", "/policies/policy-block-unbackedup-drops-v1", WIDE),
    ("scope.png", "/scopes/{scope}", WIDE),
    ("scopes.png", "/scopes", WIDE),
    ("specs.png", "/specs", WIDE),
    ("migrations.png", "/migrations", WIDE),
    ("phone-decisions.png", "/?limit=6", PHONE),
    ("phone-overview.png", "/overview", PHONE),
    ("phone-decision-block.png", "/decisions/{block}", PHONE),
    ("phone-scopes.png", f"/scopes?domain={CS}", PHONE),
]


@contextmanager
def database() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="mandate-screenshots-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(tmp / "pgdata", cleanup_mode="stop")
    try:
        admin = server.get_uri("postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE mandate_screenshots")
        url = server.get_uri("mandate_screenshots")
        with psycopg.connect(url, autocommit=True) as conn:
            Runner(conn).up()
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve the demo site until interrupted; no screenshots")
    args = parser.parse_args()
    with database() as url, seeded_server(url) as (live, seeded):
        block = seeded.block_drop
        scope = live.client.get(f"/api/decisions/{block}").json().get("scope_id") or ""
        if args.serve:
            print(f"{live.url}  (Authorization: Bearer {live.token})", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        executable = shutil.which("chromium")
        if executable is None:
            print("Chromium is missing: apt-get install -y chromium", file=sys.stderr)
            return 1
        from playwright.sync_api import sync_playwright

        IMAGES.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--headless", "--no-sandbox"])
            for name, path, (width, height) in SHOTS:
                context = browser.new_context(
                    base_url=live.url,
                    viewport={"width": width, "height": height},
                    extra_http_headers={"authorization": f"Bearer {live.token}"},
                )
                tab = context.new_page()
                tab.goto(path.format(block=block, scope=scope))
                tab.screenshot(path=str(IMAGES / name), full_page=True)
                context.close()
                print(f"wrote {(IMAGES / name).relative_to(ROOT)}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
