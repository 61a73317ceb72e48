"""An airline's support chatbot: every drafted reply is checked by Mandate before it reaches the customer.

    python examples/support_reply_guard.py --url http://127.0.0.1:3000

The chatbot cannot fill a structured context, so it sends its draft as `unstructured_context`; Mandate's observe
phase extracts the refund signals (keyword, amount, flight status) from it. Sending the reply is guarded:

- BLOCK (a refund promised for a completed flight) → the draft is not sent: "unable to process";
- PAUSE (a $250 refund promised) → a safe fallback is sent: a specialist will review the request;
- ALLOW (seat and boarding information) → the draft is sent.

`send_reply` is the chatbot's `deliver` tool wrapped in a guard: each call asks Mandate first, and the guard
reports each outcome (sent, or refused) on the decision's timeline.
"""

from __future__ import annotations

import argparse
import os
import sys

from mandate.client import Blocked, MandateClient, MandateError, Paused
from mandate.demo.scenarios import (
    ORGANIZATION_ID,
    REFUND_250_DEPARTED,
    REFUND_COMPLETED_FLIGHT,
    SEAT_INFORMATION,
    SUPPORT_DOMAIN,
    SUPPORT_FALLBACK,
    SUPPORT_UNABLE,
)

SCOPE = {"service": "chat-api", "agent": "chatbot-v3", "environment": "production"}


def deliver(customer: str, text: str) -> None:
    """The chatbot's real tool: put a reply in front of the customer."""
    print(f"  → to {customer}: {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("MANDATE_URL", "http://127.0.0.1:3000"), help="Mandate server")
    args = parser.parse_args(argv)

    try:
        with MandateClient(args.url, organization_id=ORGANIZATION_ID, domain=SUPPORT_DOMAIN) as mandate:
            # Every call of send_reply is a decision: the draft goes as unstructured_context, the customer as target.
            guard = mandate.guard(
                "issue_refund",
                "pre_commit",
                actor="chatbot-v3",
                scope=SCOPE,
                target=lambda customer, text: customer,
                context=lambda customer, text: {"customer_id": customer.removeprefix("customer:")},
                unstructured_context=lambda customer, text: text,
            )
            send_reply = guard(deliver)

            for case in (REFUND_COMPLETED_FLIGHT, REFUND_250_DEPARTED, SEAT_INFORMATION):
                draft = case.unstructured_context or ""
                print(f"draft for {case.target}: {draft}")
                try:
                    send_reply(case.target, draft)  # runs only if Mandate lets it: ALLOW (or OBSERVE)
                    verdict = guard.verdict
                except Blocked as refused:
                    verdict = refused.verdict
                    deliver(case.target, SUPPORT_UNABLE)
                except Paused as refused:
                    verdict = refused.verdict
                    deliver(case.target, SUPPORT_FALLBACK)
                assert verdict is not None
                print(f"verdict: {verdict.verdict}")
                print(f"explanation: {verdict.summary}")
                print(f"outcome reported for decision {verdict.decision_id}")
    except MandateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
