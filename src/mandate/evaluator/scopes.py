"""Scope resolution (§3 step 5): which registered scope holds authority over a decision.

A scope matches when every one of its non-null selectors (environment, service, agent, system, tenant) equals the
decision's attribution. The decision resolves to the most specific match (the one with most selectors). A scope's
ancestors are the other matches whose selectors are a proper subset of its own (a domain-wide scope, with none, is
an ancestor of every scope of its domain); their policies apply too. A match that is not nested that way, such as a
sibling, lends no policies.

Equally specific matches are a tie (MANDATE.md §3a): **all of them hold authority**, and the candidate policies are
the union of their chains (each tied scope and its ancestors), so registering a scope can never disable another
team's BLOCK. `ScopeResolution.scope` is the tied scope with the smallest id; the evaluator records instead the tied
scope whose chain holds the winning policy (`ScopeResolution.holder`).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mandate.evaluator.model import SELECTORS, Decision, Scope

_Mask = tuple[str, ...]  # names of the non-null selectors of a scope, in canonical order
_MEMO_SIZE = 4096
_Table = dict[tuple[str | None, ...], list[Scope]]  # selector values -> scopes selecting exactly them


@dataclass(frozen=True, slots=True)
class ScopeResolution:
    """The scopes holding authority over a decision: the most specific matches and their ancestors.

    `chains` is given for ties only: each tied scope's id with the ids of its own chain (itself and its ancestors).
    Without it, every ancestor is in the chain of `scope`.
    """

    scope: Scope
    ancestors: tuple[Scope, ...] = ()  # of every tied scope, most specific first, then by scope_id
    tied_with: tuple[Scope, ...] = ()  # the other equally specific matches, by scope_id
    chains: tuple[tuple[str, frozenset[str]], ...] = ()
    scope_ids: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The scopes whose policies apply: the tied scopes by id, then the ancestors."""

    def __post_init__(self) -> None:
        scope_ids = (
            self.scope.scope_id,
            *(scope.scope_id for scope in self.tied_with),
            *(ancestor.scope_id for ancestor in self.ancestors),
        )
        object.__setattr__(self, "scope_ids", scope_ids)  # derived once; the dataclass is frozen

    def find(self, scope_id: str) -> Scope | None:
        """The scope `scope_id` if it holds authority here (a tied scope or an ancestor), else None."""
        for scope in (self.scope, *self.tied_with, *self.ancestors):
            if scope.scope_id == scope_id:
                return scope
        return None

    def holder(self, scope_id: str) -> Scope:
        """The tied scope whose chain holds `scope_id` (the smallest id if several do; `scope` if none does)."""
        for top_id, chain in self.chains:
            if scope_id in chain:
                found = self.find(top_id)
                assert found is not None  # chains name tied scopes only
                return found
        return self.scope


class ScopeIndex:
    """Registered scopes, indexed once so that resolving a decision costs a few dictionary lookups."""

    def __init__(self, scopes: Iterable[Scope]) -> None:
        unique = {scope.scope_id: scope for scope in scopes}  # scope_id is the registry's primary key
        tables: dict[tuple[str, str], dict[_Mask, _Table]] = {}
        for scope in sorted(unique.values(), key=lambda s: s.scope_id):
            selectors = scope.selectors
            by_mask = tables.setdefault((scope.organization_id, scope.domain), {})
            by_mask.setdefault(tuple(selectors), {}).setdefault(tuple(selectors.values()), []).append(scope)
        # Most specific masks first, so the first matches found are the most specific ones.
        self._tables = {
            key: sorted(by_mask.items(), key=lambda item: (-len(item[0]), item[0])) for key, by_mask in tables.items()
        }
        # Resolution is a pure function of (org, domain, selector values): remember recent answers.
        self._memo: dict[tuple[str, str, tuple[object, ...]], ScopeResolution | None] = {}

    def resolve(self, decision: Decision) -> ScopeResolution | None:
        """The scope holding authority over `decision`, or None when no registered scope matches (a gap)."""
        return self.resolve_attribution(decision.organization_id, decision.domain, decision.attribution)

    def resolve_attribution(
        self, organization_id: str, domain: str, attribution: Mapping[str, str | None]
    ) -> ScopeResolution | None:
        """As `resolve`, from the parts of a decision that scope resolution reads."""
        key = (organization_id, domain, tuple([attribution.get(name) for name in SELECTORS]))
        try:
            return self._memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable attribution value matches no scope
            return None
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()  # bounded: attribution is caller-controlled
        resolution = self._memo[key] = self._resolve(organization_id, domain, attribution)
        return resolution

    def _resolve(
        self, organization_id: str, domain: str, attribution: Mapping[str, str | None]
    ) -> ScopeResolution | None:
        matches: list[tuple[_Mask, Scope]] = []
        for mask, table in self._tables.get((organization_id, domain), ()):
            hits = table.get(tuple([attribution.get(name) for name in mask]))
            if hits:
                matches.extend((mask, scope) for scope in hits)
        if not matches:
            return None
        most = len(matches[0][0])  # masks come most specific first
        top = sorted((m for m in matches if len(m[0]) == most), key=lambda m: m[1].scope_id)
        lower = [m for m in matches if len(m[0]) < most]
        if len(top) == 1:
            names = frozenset(top[0][0])
            ancestors = sorted((m for m in lower if names.issuperset(m[0])), key=_specific_first)
            return ScopeResolution(top[0][1], tuple(scope for _, scope in ancestors))
        chains = []
        union: dict[str, tuple[_Mask, Scope]] = {}
        for mask, scope in top:
            names = frozenset(mask)
            own = [m for m in lower if names.issuperset(m[0])]
            union.update((m[1].scope_id, m) for m in own)
            chains.append((scope.scope_id, frozenset([scope.scope_id, *(m[1].scope_id for m in own)])))
        ancestors = sorted(union.values(), key=_specific_first)
        return ScopeResolution(
            top[0][1], tuple(scope for _, scope in ancestors), tuple(scope for _, scope in top[1:]), tuple(chains)
        )


def _specific_first(match: tuple[_Mask, Scope]) -> tuple[int, str]:
    return (-len(match[0]), match[1].scope_id)


def can_tie(a: Scope, b: Scope) -> bool:
    """Whether some decision could match `a` and `b` as equally specific scopes (a tie, §3a): same domain, as many
    selectors, different selector fields, and the same value in every field both select on."""
    if (a.organization_id, a.domain) != (b.organization_id, b.domain) or a.scope_id == b.scope_id:
        return False
    mine, theirs = a.selectors, b.selectors
    if len(mine) != len(theirs) or mine.keys() == theirs.keys():
        return False  # fewer selectors is an ancestor, not a tie; the same fields with any value never tie
    return all(theirs[name] == value for name, value in mine.items() if name in theirs)


def resolve_scope(decision: Decision, scopes: Iterable[Scope]) -> ScopeResolution | None:
    """Resolve `decision` against `scopes` once; callers that resolve often keep a `ScopeIndex`."""
    return ScopeIndex(scopes).resolve(decision)
