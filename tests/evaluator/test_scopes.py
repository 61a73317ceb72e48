"""Scope resolution from Python: the index, the one-off helper, other organizations."""

from dataclasses import replace

import pytest

from mandate.evaluator import ScopeIndex, ScopeResolution, can_tie, resolve_scope, scopes

from .builders import ATTRIBUTION, PAYER, payment_decision

OTHER_ORG = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


def test_one_off_resolution_matches_the_index() -> None:
    domain_wide = replace(PAYER, scope_id="finance", owning_team="finance-governance", environment=None, service=None)
    domain_wide = replace(domain_wide, agent=None)
    decision = payment_decision({})

    resolution = resolve_scope(decision, [domain_wide, PAYER])

    assert resolution == ScopeIndex([PAYER, domain_wide]).resolve(decision)
    assert resolution == ScopeResolution(PAYER, ancestors=(domain_wide,))
    assert resolution is not None and resolution.scope_ids == ("finance.prod.billing.payer", "finance")


def test_scopes_of_another_organization_never_match() -> None:
    elsewhere = replace(PAYER, organization_id=OTHER_ORG, scope_id="finance.prod.billing.payer.elsewhere")

    assert ScopeIndex([elsewhere]).resolve(payment_decision({})) is None


def test_attribution_fields_a_scope_does_not_select_on_are_ignored() -> None:
    decision = payment_decision({}, attribution={"environment": "prod", "service": "billing", "agent": "payer",
                                                 "tenant": "acme", "region": "eu"})  # fmt: skip

    resolution = ScopeIndex([PAYER]).resolve(decision)

    assert resolution is not None and resolution.scope is PAYER


def test_unhashable_attribution_matches_no_scope() -> None:
    decision = payment_decision({}, attribution={"environment": ["prod"], "service": "billing", "agent": "payer"})

    assert ScopeIndex([PAYER]).resolve(decision) is None


def test_remembered_resolutions_are_bounded_and_stay_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scopes, "_MEMO_SIZE", 2)
    index = ScopeIndex([PAYER])
    agents = ["payer", "refunder", "auditor", "payer"]

    resolved = [index.resolve(payment_decision({}, attribution={**ATTRIBUTION, "agent": a})) for a in agents]

    assert [r and r.scope.scope_id for r in resolved] == [PAYER.scope_id, None, None, PAYER.scope_id]
    assert len(index._memo) <= 2


def test_a_resolution_finds_only_the_scopes_holding_authority() -> None:
    resolution = resolve_scope(payment_decision({}), [PAYER])

    assert resolution is not None
    assert resolution.find(PAYER.scope_id) is PAYER
    assert resolution.find("finance.elsewhere") is None
    assert resolution.holder("finance.elsewhere") is PAYER  # without a tie, the resolved scope holds everything


def test_scopes_that_can_tie_are_those_a_decision_could_fall_under_with_neither_containing_the_other() -> None:
    prod = replace(PAYER, scope_id="finance.prod", environment="prod", service=None, agent=None)
    ledger = replace(prod, scope_id="finance.ledger", environment=None, system="ledger")
    staging = replace(prod, scope_id="finance.staging", environment="staging")
    billing = replace(prod, scope_id="finance.prod.billing", service="billing")
    other_domain = replace(ledger, scope_id="hr.ledger", domain="hr")

    assert can_tie(prod, ledger) and can_tie(ledger, prod)
    assert not can_tie(prod, staging)  # the same field with different values: never both
    assert not can_tie(prod, billing)  # an ancestor, not a tie
    assert not can_tie(prod, prod)
    assert not can_tie(ledger, other_domain)
    assert can_tie(billing, replace(billing, scope_id="finance.prod.x", service=None, system="x"))
    assert not can_tie(billing, replace(billing, scope_id="finance.y.x", environment="y", service=None, system="x"))
    assert can_tie(billing, ledger)  # not equally specific, but neither contains the other: both hold authority
