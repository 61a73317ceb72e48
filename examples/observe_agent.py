"""The observe agent: tells Mandate about three actions it has already executed, then reports each outcome.

    python examples/observe_agent.py --url http://127.0.0.1:3000

Stage `executed` is for the record: the demo specs allow only OBSERVE. Each context also carries
`execution_success`, which no spec declares: it is stored with the decision and ignored by the evaluation.
"""

from __future__ import annotations

import argparse
import os
import sys

from mandate.client import MandateClient, MandateError
from mandate.demo.scenarios import EXECUTED_CONFIG_UPDATE, EXECUTED_EXPORT, EXECUTED_LOGIN, ORGANIZATION_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("MANDATE_URL", "http://127.0.0.1:3000"), help="Mandate server")
    args = parser.parse_args(argv)

    try:
        with MandateClient(args.url, organization_id=ORGANIZATION_ID, domain=EXECUTED_LOGIN.domain) as mandate:
            for event in (EXECUTED_LOGIN, EXECUTED_EXPORT, EXECUTED_CONFIG_UPDATE):
                print(f"observe agent: executed {event.intent} on {event.target}")
                verdict = mandate.decide(
                    event.intent,
                    "executed",
                    actor="observe-agent",
                    target=event.target,
                    context=event.context,
                    scope=event.scope,
                )
                print(f"verdict: {verdict.verdict}")
                print(f"explanation: {verdict.summary}")
                mandate.report_outcome(
                    verdict.decision_id, "executed", success=True, details={"execution_success": True}
                )
                print(f"outcome reported for decision {verdict.decision_id}")
    except MandateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
