"""Scope resolution (§3 step 5, with the rulings of §3a): which registered scopes hold authority over a decision.

A scope matches when every one of its non-null selectors (environment, service, agent, system, tenant) equals the
decision's attribution. A matching scope's **ancestors** are the other matches whose selectors are a proper subset
of its own (a domain-wide scope, with none, is an ancestor of every scope of its domain); their policies apply too.

Every match that is not an ancestor of another match holds authority, each with its chain (itself and its
ancestors), and the candidate policies are the union of those chains. Usually that is one scope, the most specific
match, as §3 step 5 says. When several match and none contains the other — equally specific scopes (a tie, §3a), or
a match that selects on a field the most specific one does not (`system: ledger` beside `environment, service,
agent`) — all of them hold authority: registering a scope can never disable another team's BLOCK (§3a), which also
makes adding a scope monotone (no decision ever gets a less severe verdict from it). We read §3a's rule for ties as
covering the second case too, the reading that fails closed: §3 step 6 alone would let a newly registered, more
specific scope silence the policies of a scope that is not nested in it.

`ScopeResolution.scope` is the most specific scope holding authority (the smallest id among equals); the evaluator
records instead the one whose chain holds the winning policy (`ScopeResolution.holder`).
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

    `chains` is given when several scopes hold authority: each one's id with the ids of its own chain (itself and its
    ancestors), most specific first. Without it, every ancestor is in the chain of `scope`.
    """

    scope: Scope
    ancestors: tuple[Scope, ...] = ()  # of every scope holding authority, most specific first, then by scope_id
    tied_with: tuple[Scope, ...] = ()  # the other scopes holding authority, most specific first, then by scope_id
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
        """The scope holding authority whose chain holds `scope_id` (the most specific, then the smallest id, if several
        do; `scope` if none does)."""
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
        # A match holds authority unless another match selects on a proper superset of its fields (then it is that
        # match's ancestor). Matching scopes agree on every field both select on, so fields decide nesting.
        masks = [frozenset(mask) for mask, _ in matches]
        tops = [m for m, names in zip(matches, masks, strict=True) if not any(names < other for other in masks)]
        tops.sort(key=_specific_first)
        lower = [m for m in matches if not any(m is top for top in tops)]
        if len(tops) == 1:
            ancestors = sorted(lower, key=_specific_first)  # every other match is an ancestor of the only top
            return ScopeResolution(tops[0][1], tuple(scope for _, scope in ancestors))
        chains = []
        for mask, scope in tops:
            names = frozenset(mask)
            own = [m for m in lower if names.issuperset(m[0])]
            chains.append((scope.scope_id, frozenset([scope.scope_id, *(m[1].scope_id for m in own)])))
        ancestors = sorted(lower, key=_specific_first)
        return ScopeResolution(
            tops[0][1], tuple(scope for _, scope in ancestors), tuple(scope for _, scope in tops[1:]), tuple(chains)
        )


def _specific_first(match: tuple[_Mask, Scope]) -> tuple[int, str]:
    return (-len(match[0]), match[1].scope_id)


def can_tie(a: Scope, b: Scope) -> bool:
    """Whether some decision could fall under both `a` and `b` with neither an ancestor of the other — so that both
    hold authority over it (a tie, §3a): same domain, each selecting on a field the other does not, and the same
    value in every field both select on."""
    if (a.organization_id, a.domain) != (b.organization_id, b.domain) or a.scope_id == b.scope_id:
        return False
    mine, theirs = a.selectors, b.selectors
    if mine.keys() <= theirs.keys() or theirs.keys() <= mine.keys():
        return False  # nested (an ancestor), or the same fields, which never both match with different values
    return all(theirs[name] == value for name, value in mine.items() if name in theirs)


def resolve_scope(decision: Decision, scopes: Iterable[Scope]) -> ScopeResolution | None:
    """Resolve `decision` against `scopes` once; callers that resolve often keep a `ScopeIndex`."""
    return ScopeIndex(scopes).resolve(decision)
