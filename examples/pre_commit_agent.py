"""The pre-commit agent: before writing a 2.5 MB production YAML file, ask Mandate.

    python examples/pre_commit_agent.py --url http://127.0.0.1:3000

With the demo governance (`mandate apply --demo`, or `mandate demo`) the answer is PAUSE: files of 1 MiB or more
wait for a compliance review, so the agent does not write the file.
"""

from __future__ import annotations

import argparse
import os
import sys

from mandate.client import MandateClient, MandateError
from mandate.demo.scenarios import LARGE_PRODUCTION_WRITE, ORGANIZATION_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("MANDATE_URL", "http://127.0.0.1:3000"), help="Mandate server")
    args = parser.parse_args(argv)

    request = LARGE_PRODUCTION_WRITE
    print(f"pre-commit agent: about to write {request.target} ({request.context['content_length']:,} bytes of yaml)")
    try:
        with MandateClient(args.url, organization_id=ORGANIZATION_ID, domain=request.domain) as mandate:
            verdict = mandate.decide(
                "file.write",
                "pre_commit",
                actor="pre-commit-agent",
                target=request.target,
                context=request.context,
                scope=request.scope,
            )
    except MandateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(f"verdict: {verdict.verdict}")
    print(f"explanation: {verdict.summary}")
    if verdict.paused:
        expires = verdict.pause_expires_at.isoformat() if verdict.pause_expires_at else "no deadline"
        print(f"not writing: waiting for {', '.join(verdict.pause_requires)} (until {expires})")
    elif verdict.blocked:
        print("not writing: blocked")
    else:
        print(f"writing {request.target}")
    print(f"decision: {verdict.decision_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
