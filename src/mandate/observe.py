"""Observe phase: fill declared context signals from free text, deterministically.

``extract(text, signals, provided)`` reads an agent's ``unstructured_context`` (for example a chatbot's draft
reply) and proposes values for the spec's declared signals. It is pure: no I/O, no clock, no logging, standard
library only. The same inputs always give the same result.

What it may fill, and what it never does:

- only signals declared with ``source: context`` (a declaration without ``source`` is a context signal, the
  spec format's default) whose name is **absent** from ``provided`` — a key the agent sent, even as ``null``, is
  never touched;
- never an undeclared signal, never a ``string`` signal (too ambiguous to read from prose);
- never a value that lowers risk when the text is ambiguous: the largest amount wins, an affirmative mention of a
  boolean beats a negated one, a money flag is set when an amount is present and left absent otherwise;
- the text itself is never returned: a result holds values and provenance whose tokens come from the spec (enum
  values, signal names) or from fixed tables (currency codes), never from the customer's words.

Extractors by declared type (the full rules are in ``docs/observe.md``):

``enum``
    a declared value as a whole word, case-insensitive, with plural (``refunds``), verb (``refunded``,
    ``refunding``) and separator (``pre-commit`` / ``pre_commit`` / ``pre commit``) variants; of the values the
    text mentions, the one **declared last** wins (specs declare enum values from least to most risky, so the phase
    never fills a less risky value than one the text mentions — MANDATE.md §3a); the others are recorded as
    ``alternatives``, in text order.
``number``
    a money-named signal (``amount``, ``price``, ``refund``…) takes the largest currency amount (``$250``,
    ``USD 1,250.50``, ``40 €``); any other number signal takes the largest number written next to its own words
    (``5000 records`` for ``record_count``). Integral numbers are ``int``, others ``float``.
``boolean``
    true/false from phrases built from the signal's own name (``requires_escalation``: "escalate",
    "escalation", with negation handling); a ``has_…amount/value/monetary/money`` flag is true when a currency
    amount is present (``derived_from_amount``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "Method",
    "ObserveResult",
    "Provenance",
    "SignalValue",
    "extract",
    "fillable_signals",
]

SignalValue = bool | int | float | str
"""A signal value as the evaluator sees it (the JSON scalar types)."""

Method = Literal[
    "enum_word",
    "currency_amount",
    "number_with_unit",
    "boolean_phrase",
    "derived_from_amount",
    "assisted",
]
"""How a value was obtained; stored in the verdict's explanation."""


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one populated value came from.

    ``token`` is a short normalised token from the spec's vocabulary (the enum value, the phrase or unit built
    from the signal's name), never a span of the text. ``currency`` is an ISO 4217 code from a fixed table.
    ``alternatives`` lists the other enum values also mentioned. ``confidence`` is set only for ``assisted``.
    """

    signal: str
    value: SignalValue
    method: Method
    pattern: str
    token: str | None = None
    currency: str | None = None
    alternatives: tuple[str, ...] = ()
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; optional fields appear only when set."""
        out: dict[str, Any] = {
            "signal": self.signal,
            "value": self.value,
            "method": self.method,
            "pattern": self.pattern,
        }
        if self.token is not None:
            out["token"] = self.token
        if self.currency is not None:
            out["currency"] = self.currency
        if self.alternatives:
            out["alternatives"] = list(self.alternatives)
        if self.confidence is not None:
            out["confidence"] = self.confidence
        return out


@dataclass(frozen=True, slots=True)
class ObserveResult:
    """The newly populated values (in declaration order), their provenance and any notes.

    ``notes`` are fixed sentences naming signals and reasons (used by the assisted path: a timeout, a dropped
    suggestion); like everything else here they never quote the text.
    """

    values: dict[str, SignalValue] = field(default_factory=dict)
    provenance: tuple[Provenance, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, suitable for the verdict's explanation."""
        return {
            "values": dict(self.values),
            "provenance": [p.to_dict() for p in self.provenance],
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------------------------
# Declarations


def fillable_signals(
    signals: Sequence[Mapping[str, Any]], provided: Mapping[str, Any]
) -> tuple[Mapping[str, Any], ...]:
    """The declarations the Observe phase may fill: context signals whose name the agent did not send.

    A declaration without a string ``name`` is skipped; a repeated name keeps its first declaration.
    """
    seen: set[str] = set()
    out: list[Mapping[str, Any]] = []
    for decl in signals:
        name = decl.get("name")
        if not isinstance(name, str) or name in seen:
            continue
        seen.add(name)
        if decl.get("source", "context") == "context" and name not in provided:
            out.append(decl)
    return tuple(out)


def _name_tokens(name: str) -> list[str]:
    """``requires_escalation`` / ``requiresEscalation`` / ``requires-escalation`` → ``["requires", "escalation"]``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.findall(r"[a-z0-9]+", spaced.lower())


# --------------------------------------------------------------------------------------------------------------
# Shared text machinery

_WORD_BEFORE = r"(?<![^\W_])"  # not preceded by a letter or digit
_WORD_AFTER = r"(?![^\W_])"  # not followed by a letter or digit
_SEP = r"[\s_-]*"  # between the words of a multi-word value: space, hyphen, underscore or nothing
_SEP_RUN = re.compile(r"[\s_-]+")
_VOWELS = frozenset("aeiou")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

# A number as written in English prose: 250, 1250.50, 1,250.50. At most 18 integer and 6 decimal digits, and
# never a piece of a longer number ("1,25" and "1.2.3" give nothing rather than a guess).
_NUM = r"(?<![\d.,])(?P<num>\d{1,3}(?:,\d{3}){1,5}(?:\.\d{1,6})?|\d{1,18}(?:\.\d{1,6})?)(?!\d|[.,]\d)"


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


def _normalise(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").lower()


def _to_number(raw: str) -> int | float:
    """Integral → ``int``, otherwise ``float``: the same types a JSON body gives for an agent-sent number."""
    amount = Decimal(raw.replace(",", ""))
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)


def _alternation(forms: Iterable[str]) -> str:
    """A regex alternation of literal forms, longest first; separators inside a form are flexible."""
    ordered = sorted(set(forms), key=lambda f: (-len(f), f))
    return "(?:" + "|".join(_SEP.join(re.escape(p) for p in _SEP_RUN.split(f)) for f in ordered) + ")"


def _squash(surface: str) -> str:
    return _SEP_RUN.sub("", surface)


# --------------------------------------------------------------------------------------------------------------
# enum


def _enum_forms(value: str) -> dict[str, str]:
    """Every accepted surface form of a (lower-case) enum value → the pattern name reported in provenance."""
    forms = {value: "whole_word"}

    def add(form: str, pattern: str) -> None:
        forms.setdefault(form, pattern)

    if not value[-1].isalpha():
        return forms
    ends_consonant_y = len(value) > 1 and value[-1] == "y" and value[-2] not in _VOWELS
    if ends_consonant_y:
        add(value[:-1] + "ies", "plural")
        add(value[:-1] + "ied", "verb_form")
        add(value + "ing", "verb_form")
        return forms
    add(value + "s", "plural")
    if value.endswith(("s", "x", "z", "ch", "sh", "o")):
        add(value + "es", "plural")
    if value.endswith("e"):
        if len(value) > 1 and value[-2] not in _VOWELS:  # charge → charged, charging; but fee ↛ feed
            add(value + "d", "verb_form")
            add(value[:-1] + "ing", "verb_form")
    else:
        add(value + "ed", "verb_form")
        add(value + "ing", "verb_form")
        if (
            len(value) > 2
            and value[-1] not in _VOWELS | {"w", "x", "y"}
            and value[-2] in _VOWELS
            and value[-3] not in _VOWELS
        ):  # cancel → cancelled, cancelling
            add(value + value[-1] + "ed", "verb_form")
            add(value + value[-1] + "ing", "verb_form")
    if value.endswith("lled"):  # cancelled ↔ canceled
        add(value[:-4] + "led", "spelling_variant")
    elif value.endswith("led"):
        add(value[:-3] + "lled", "spelling_variant")
    return forms


@functools.lru_cache(maxsize=4096)
def _enum_regex(key: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """The regex finding any surface form of enum value `key`, and squashed form → pattern name. Memoised: the
    forms depend only on the declared value, not on the text."""
    forms = _enum_forms(key)
    regex = re.compile(_WORD_BEFORE + _alternation(forms) + _WORD_AFTER)
    return regex, {_squash(f): p for f, p in forms.items()}


def _extract_enum(name: str, declared: object, lowered: str) -> Provenance | None:
    if not isinstance(declared, list | tuple):
        return None
    found: list[tuple[int, int, int, str, str]] = []  # (start, -length, declaration index, value, pattern)
    seen: set[str] = set()
    for index, value in enumerate(declared):
        if not isinstance(value, str):
            continue
        key = value.strip().lower()
        if key in seen or not re.search(r"[^\W_]", key):
            continue
        seen.add(key)
        regex, patterns = _enum_regex(key)
        match = regex.search(lowered)
        if match is not None:
            pattern = patterns[_squash(match.group())]
            found.append((match.start(), match.start() - match.end(), index, value, pattern))
    if not found:
        return None
    found.sort()  # text order, for the alternatives
    # Never lower risk (§3a): specs declare enum values from least to most risky, so the one declared last wins.
    winner = max(found, key=lambda f: f[2])
    _, _, _, chosen, pattern = winner
    return Provenance(
        signal=name,
        value=chosen,
        method="enum_word",
        pattern=pattern,
        token=chosen.strip().lower(),
        alternatives=tuple(other for _, _, index, other, _ in found if index != winner[2]),
    )


# --------------------------------------------------------------------------------------------------------------
# number: currency amounts and numbers next to the signal's own words

_SYMBOL_CODES = {
    "$": "USD",
    "US$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
}
_CODES = _words("USD EUR GBP JPY CHF CAD AUD NZD HKD SGD SEK NOK DKK PLN CZK HUF INR CNY MXN BRL ZAR AED")
_CURRENCY_WORDS = {"dollar": "USD", "dollars": "USD", "euro": "EUR", "euros": "EUR"}

_SYMBOL = r"(?:(?<![^\W_])(?:US|CA|C|AU|A|NZ|HK|S))?\$|[€£¥]"
_CODE = "(?:" + "|".join(sorted(_CODES)) + ")"
_CURRENCY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("symbol_prefix", re.compile(rf"(?P<cur>{_SYMBOL})\s?{_NUM}")),
    ("symbol_suffix", re.compile(rf"{_NUM}\s?(?P<cur>[$€£¥])")),
    ("code_prefix", re.compile(rf"{_WORD_BEFORE}(?P<cur>{_CODE})(?![^\W\d_])\s?{_NUM}", re.IGNORECASE)),
    ("code_suffix", re.compile(rf"{_NUM}\s?(?P<cur>{_CODE}){_WORD_AFTER}", re.IGNORECASE)),
    ("currency_word", re.compile(rf"{_NUM}\s?(?P<cur>dollars?|euros?){_WORD_AFTER}", re.IGNORECASE)),
)

# A number signal whose name contains one of these words is a money signal.
_MONEY_WORDS = _words(
    "amount value price cost refund fee charge payment monetary money fare balance compensation credit"
)
# A boolean named has_/have_/contains_/includes_ + one of these is a money flag.
_MONEY_FLAG_HEADS = _words("has have contains includes")
_MONEY_FLAG_WORDS = _words("monetary amount value money")
# Words in a number signal's name that say "how many", not "of what".
_GENERIC_NUMBER_WORDS = _words("count number num nb total size length qty quantity of n")


@dataclass(frozen=True, slots=True)
class _Amount:
    start: int
    value: int | float
    currency: str
    pattern: str


def _currency_amounts(text: str) -> list[_Amount]:
    amounts: list[_Amount] = []
    for pattern, regex in _CURRENCY_PATTERNS:
        for match in regex.finditer(text):
            cur = match.group("cur")
            code = _SYMBOL_CODES.get(cur) or _CURRENCY_WORDS.get(cur.lower()) or cur.upper()
            amounts.append(_Amount(match.start(), _to_number(match.group("num")), code, pattern))
    return amounts


def _largest(amounts: Sequence[_Amount]) -> _Amount | None:
    """The largest amount (never lower risk); the earliest one among equals."""
    if not amounts:
        return None
    return min(amounts, key=lambda a: (-a.value, a.start))


@functools.lru_cache(maxsize=4096)
def _unit_number_regexes(tokens: tuple[str, ...]) -> tuple[tuple[str, str, re.Pattern[str]], ...]:
    """(pattern name, token, regex) for `_extract_unit_number`; memoised by the signal's name tokens."""
    units = [t for t in tokens if t.isalpha() and t not in _GENERIC_NUMBER_WORDS]
    regexes: list[tuple[str, str, re.Pattern[str]]] = []
    if units:
        unit = units[-1]
        regexes.append(
            (
                "number_before_unit",
                unit,
                re.compile(rf"{_NUM}\s+(?:[^\W\d_]+\s+)?{_alternation(_word_forms(unit))}{_WORD_AFTER}"),
            )
        )
    phrase = _SEP.join(_alternation(_word_forms(t)) for t in tokens)
    regexes.append(
        (
            "name_before_number",
            " ".join(tokens),
            re.compile(rf"{_WORD_BEFORE}{phrase}(?:\s*(?:is|was|of|=|:))?\s*{_NUM}"),
        )
    )
    return tuple(regexes)


def _extract_unit_number(name: str, tokens: list[str], lowered: str) -> Provenance | None:
    """``record_count``: "5000 records", "5,000 new records", "record count: 5000" → the largest such number."""
    best: tuple[int | float, int, str, str] | None = None
    for pattern, token, regex in _unit_number_regexes(tuple(tokens)):
        for match in regex.finditer(lowered):
            value = _to_number(match.group("num"))
            if best is None or (value, -match.start()) > (best[0], -best[1]):
                best = (value, match.start(), pattern, token)
    if best is None:
        return None
    value, _, pattern, token = best
    return Provenance(signal=name, value=value, method="number_with_unit", pattern=pattern, token=token)


# --------------------------------------------------------------------------------------------------------------
# boolean: phrases built from the signal's own name

# Leading name words that carry the predicate, not its subject: requires_escalation → "escalation".
_HEADS = _words(
    "is are was were has have had requires require needs need includes include contains contain "
    "should must can will did does do"
)
# Suffixes a name word's stem may take in the text: escalation → escalat + e/es/ed/ing/ion/ions.
_STEM_STRIP = ("ions", "ion", "ing", "ed", "es", "s", "e")
_STEM_SUFFIXES = ("", "e", "s", "es", "d", "ed", "ing", "ion", "ions")
_NEGATORS = _words("no not never without nor neither none non cannot nothing")
_NEGATION_WINDOW = 3  # words before the phrase, within its clause…
_NEGATION_LOOKBACK = 200  # …and within this many characters, so a long text costs linear time
_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\n\u2013\u2014]|" + _WORD_BEFORE + "but" + _WORD_AFTER)
_COPULA = r"(?:is|are|was|were|will\s+be|would\s+be)"
_NEEDED = r"(?:needed|required|necessary|warranted)"
_POST_NEGATION = re.compile(
    rf"\s+(?:{_COPULA}(?:\s+not|n't)\s+{_NEEDED}|(?:won't|wouldn't)\s+be\s+{_NEEDED}|not\s+{_NEEDED}"
    rf"|(?:{_COPULA}\s+)?(?:unnecessary|unneeded)){_WORD_AFTER}"
)


def _stem(word: str) -> str:
    for suffix in _STEM_STRIP:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                continue  # process, status, analysis are not plurals
            return word[: -len(suffix)]
    return word


def _word_forms(word: str) -> set[str]:
    """A name word and the inflections of its stem: escalation → escalate, escalated, escalating, escalations…"""
    if not word.isalpha():
        return {word}
    stem = _stem(word)
    return {word} | {stem + suffix for suffix in _STEM_SUFFIXES}


def _is_negated(lowered: str, match: re.Match[str]) -> bool:
    """A negator among the three words before the phrase in its clause, or "… is not needed" right after it."""
    start = max(0, match.start() - _NEGATION_LOOKBACK)
    parts = _CLAUSE_BREAK.split(lowered[start : match.start()])
    before = _WORD.findall(parts[-1])
    if start > 0 and len(parts) == 1:
        before = before[1:]  # the look-back may have cut the first word in half
    if any(word in _NEGATORS or word.endswith("n't") for word in before[-_NEGATION_WINDOW:]):
        return True
    return _POST_NEGATION.match(lowered, match.end()) is not None


@functools.lru_cache(maxsize=4096)
def _phrase_regex(subject: tuple[str, ...]) -> re.Pattern[str]:
    """The subject's words in any of their forms, in order, as whole words; memoised by the subject."""
    return re.compile(_WORD_BEFORE + _SEP.join(_alternation(_word_forms(t)) for t in subject) + _WORD_AFTER)


def _extract_boolean_phrase(name: str, tokens: list[str], lowered: str) -> Provenance | None:
    subject = list(tokens)
    while len(subject) > 1 and subject[0] in _HEADS:
        subject.pop(0)
    negated = [_is_negated(lowered, match) for match in _phrase_regex(tuple(subject)).finditer(lowered)]
    if not negated:
        return None
    affirmative = not all(negated)  # one affirmative mention outweighs any negated one: never lower risk
    return Provenance(
        signal=name,
        value=affirmative,
        method="boolean_phrase",
        pattern="affirmative" if affirmative else "negated",
        token=" ".join(subject),
    )


# --------------------------------------------------------------------------------------------------------------
# The phase


def _extract_one(decl: Mapping[str, Any], lowered: str, amounts: Sequence[_Amount]) -> Provenance | None:
    name: str = decl["name"]
    kind = decl.get("type")
    tokens = _name_tokens(name)
    if not tokens:
        return None
    if kind == "enum":
        return _extract_enum(name, decl.get("values"), lowered)
    if kind == "number":
        if _MONEY_WORDS.isdisjoint(tokens):
            return _extract_unit_number(name, tokens, lowered)
        amount = _largest(amounts)
        if amount is None:
            return None
        return Provenance(
            signal=name,
            value=amount.value,
            method="currency_amount",
            pattern=amount.pattern,
            currency=amount.currency,
        )
    if kind == "boolean":
        if _MONEY_FLAG_HEADS.isdisjoint(tokens) or _MONEY_FLAG_WORDS.isdisjoint(tokens):
            return _extract_boolean_phrase(name, tokens, lowered)
        amount = _largest(amounts)
        if amount is None:
            return None  # absent, not false: the text not showing an amount does not prove there is none
        return Provenance(
            signal=name,
            value=True,
            method="derived_from_amount",
            pattern=amount.pattern,
            currency=amount.currency,
        )
    return None  # string (deliberately not extracted) or an unknown type


def extract(text: str, signals: Sequence[Mapping[str, Any]], provided: Mapping[str, Any]) -> ObserveResult:
    """Populate declared context signals the agent did not send, from ``text``.

    ``signals`` are the spec's declarations (``name``, ``type``, ``values``, ``required``, ``source``);
    ``provided`` is the context the agent sent. Returns only the newly populated values, in declaration order,
    with one provenance record each.
    """
    lowered = _normalise(text)
    amounts = _currency_amounts(text)
    values: dict[str, SignalValue] = {}
    provenance: list[Provenance] = []
    for decl in fillable_signals(signals, provided):
        found = _extract_one(decl, lowered, amounts)
        if found is not None:
            values[found.signal] = found.value
            provenance.append(found)
    return ObserveResult(values=values, provenance=tuple(provenance))
