"""The pause-escalation agent: asks before dropping `production.users` — critical, irreversible, no backup.

    python examples/pause_escalation_agent.py --url http://127.0.0.1:3000

With the demo governance two policies match: the BLOCK of drops without a backup and the PAUSE of critical
operations. BLOCK is more severe than PAUSE, so the verdict is BLOCK, and the explanation lists both.
"""

from __future__ import annotations

import argparse
import os
import sys

from mandate.client import MandateClient, MandateError
from mandate.demo.scenarios import CRITICAL_DROP_WITHOUT_BACKUP, ORGANIZATION_ID


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("MANDATE_URL", "http://127.0.0.1:3000"), help="Mandate server")
    args = parser.parse_args(argv)

    request = CRITICAL_DROP_WITHOUT_BACKUP
    print(f"pause-escalation agent: about to drop {request.target} ({request.context})")
    try:
        with MandateClient(args.url, organization_id=ORGANIZATION_ID, domain=request.domain) as mandate:
            verdict = mandate.decide(
                "database.drop_table",
                "pre_commit",
                actor="pause-escalation-agent",
                target=request.target,
                context=request.context,
                scope=request.scope,
            )
    except MandateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    print(f"verdict: {verdict.verdict}")
    print(f"explanation: {verdict.summary}")
    print(f"matched policies: {', '.join(verdict.matched_policy_ids)}")
    for policy in verdict.explanation.get("policies", []):
        if policy.get("matched"):
            print(f"  - {policy['policy_id']} → {policy['verdict']}")
    print(f"winner: {verdict.winning_policy_id} (authority: scope {verdict.scope_id}, owner {verdict.owning_team})")
    if verdict.blocked:
        print(f"not dropping {request.target}: blocked")
    elif verdict.paused:
        print(f"not dropping {request.target} yet: escalated to {', '.join(verdict.pause_requires)}")
    print(f"decision: {verdict.decision_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
