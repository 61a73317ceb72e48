"""The runbook's remedy options, parsed and validated before anything touches the database."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mandate.errors import ConfigError
from mandate.migrate.remedies import DomainSlug, Remedies, ScopeId, Unattributed

ORG = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
SCOPE_A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
SCOPE_B = uuid.UUID("00000000-0000-0000-0000-00000000000b")


def test_domain_slugs_from_options_and_an_organization_prefix() -> None:
    r = Remedies.from_options(["Customer Support=customer-support", f"{ORG}:Finance=finance"])
    assert r.domain_slugs == (
        DomainSlug("Customer Support", "customer-support"),
        DomainSlug("Finance", "finance", ORG),
    )
    assert r.as_json()["domain_slugs"][1] == {"organization_id": str(ORG), "name": "Finance", "slug": "finance"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("no-equals-sign", "must be NAME=slug"),
        ("=finance", "must be NAME=slug"),
        ("Finance=Not A Slug", "is not a slug"),
        ("Finance=", "is not a slug"),
    ],
)
def test_a_malformed_domain_slug_names_the_option(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"--domain-slug.*{message}"):
        Remedies.from_options([raw])


def test_one_name_mapped_to_two_slugs_is_refused() -> None:
    with pytest.raises(ConfigError, match="mapped twice"):
        Remedies.from_options(["Finance=finance", "Finance=money"])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("slugs.csv", "name,slug\nCustomer Support,customer-support\nFinance,finance\n"),
        ("slugs.csv", "Customer Support,customer-support\nFinance,finance\n"),
        ("slugs.yaml", "Customer Support: customer-support\nFinance: finance\n"),
        ("slugs.yaml", "- {name: Customer Support, slug: customer-support}\n- {name: Finance, slug: finance}\n"),
    ],
)
def test_a_domain_slug_file_in_csv_or_yaml(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    r = Remedies.from_options(domain_slug_file=path)
    assert [(s.name, s.slug) for s in r.domain_slugs] == [
        ("Customer Support", "customer-support"),
        ("Finance", "finance"),
    ]
    assert r.sources == (f"--domain-slug-file {path}",)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("map.csv", f"legacy_scope_uuid,scope_id\n{SCOPE_A},payments.billing-a\n{SCOPE_B},payments.billing-b\n"),
        ("map.csv", f"{SCOPE_A},payments.billing-a\n{SCOPE_B},payments.billing-b\n"),
        ("map.yaml", f"{SCOPE_A}: payments.billing-a\n{SCOPE_B}: payments.billing-b\n"),
        (
            "map.yml",
            f"- legacy_scope_uuid: {SCOPE_A}\n  scope_id: payments.billing-a\n"
            f"- legacy_scope_uuid: {SCOPE_B}\n  scope_id: payments.billing-b\n",
        ),
    ],
)
def test_a_scope_id_map_in_csv_or_yaml(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    r = Remedies.from_options(scope_id_map=path)
    assert r.scope_ids == (ScopeId(SCOPE_A, "payments.billing-a"), ScopeId(SCOPE_B, "payments.billing-b"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not-a-uuid,payments.x\n", "is not a scope UUID"),
        (f"{SCOPE_A},Payments Billing\n", "is not a scope id"),
        (f"{SCOPE_A},payments\n", "is not a scope id"),
        (f"{SCOPE_A},payments.a\n{SCOPE_A},payments.b\n", "mapped twice"),
        ("", "maps no scope"),
        (f"{SCOPE_A},payments.a,extra\n", "row 1 has 3 column"),
    ],
)
def test_a_bad_scope_id_map_is_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "map.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"--scope-id-map {path}: .*{message}"):
        Remedies.from_options(scope_id_map=path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--scope-id-map .*cannot read the file: No such file"):
        Remedies.from_options(scope_id_map=tmp_path / "absent.csv")
    with pytest.raises(ConfigError, match=r"--domain-slug-file .*cannot read the file"):
        Remedies.from_options(domain_slug_file=tmp_path / "absent.yaml")


def test_invalid_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("[unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Remedies.from_options(scope_id_map=path)


def test_unattributed_target() -> None:
    r = Remedies.from_options(unattributed_to=f"{ORG}/unattributed")
    assert r.unattributed_to == Unattributed(ORG, "unattributed")
    assert not r.empty


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("unattributed", "must be ORG_ID/DOMAIN"),
        ("acme/unattributed", "must be ORG_ID/DOMAIN"),
        (f"{ORG}/Not Slug", "is not a domain slug"),
        (f"{ORG}/", "is not a domain slug"),
    ],
)
def test_a_malformed_unattributed_target_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"--unattributed-to.*{message}"):
        Remedies.from_options(unattributed_to=raw)


def test_no_options_means_no_remedies() -> None:
    r = Remedies.from_options()
    assert r.empty
    assert r.as_json() == {"domain_slugs": [], "scope_ids": [], "unattributed_to": None}
