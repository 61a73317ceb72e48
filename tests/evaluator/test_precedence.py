"""The truth table of verdict precedence: BLOCK > PAUSE > ALLOW > OBSERVE, and the default when nothing matched."""

from itertools import product

import pytest

from mandate.evaluator import Verdict, resolve_verdict

ALLOW, PAUSE, BLOCK, OBSERVE = Verdict.ALLOW, Verdict.PAUSE, Verdict.BLOCK, Verdict.OBSERVE

PAIRS = {
    (BLOCK, BLOCK): BLOCK,
    (BLOCK, PAUSE): BLOCK,
    (BLOCK, ALLOW): BLOCK,
    (BLOCK, OBSERVE): BLOCK,
    (PAUSE, BLOCK): BLOCK,
    (PAUSE, PAUSE): PAUSE,
    (PAUSE, ALLOW): PAUSE,
    (PAUSE, OBSERVE): PAUSE,
    (ALLOW, BLOCK): BLOCK,
    (ALLOW, PAUSE): PAUSE,
    (ALLOW, ALLOW): ALLOW,
    (ALLOW, OBSERVE): ALLOW,
    (OBSERVE, BLOCK): BLOCK,
    (OBSERVE, PAUSE): PAUSE,
    (OBSERVE, ALLOW): ALLOW,
    (OBSERVE, OBSERVE): OBSERVE,
}


def test_the_table_covers_every_pair() -> None:
    assert set(PAIRS) == set(product(Verdict, repeat=2))


@pytest.mark.parametrize(("pair", "winner"), PAIRS.items(), ids=[f"{a}-{b}" for a, b in PAIRS])
def test_most_severe_of_a_pair_wins(pair: tuple[Verdict, Verdict], winner: Verdict) -> None:
    for default in Verdict:  # the default never matters once something matched
        assert resolve_verdict(pair, default) is winner


@pytest.mark.parametrize("verdict", list(Verdict))
def test_a_single_match_is_the_verdict(verdict: Verdict) -> None:
    assert resolve_verdict([verdict], default=OBSERVE) is verdict


def test_nothing_matched_gives_observe_unless_told_otherwise() -> None:
    assert resolve_verdict([]) is OBSERVE
    for default in Verdict:
        assert resolve_verdict([], default) is default
        assert resolve_verdict(iter(()), default) is default


def test_block_outranks_every_combination_containing_it() -> None:
    for size in range(1, 5):
        for combination in product(Verdict, repeat=size):
            expected = next(v for v in (BLOCK, PAUSE, ALLOW, OBSERVE) if v in combination)
            assert resolve_verdict(combination) is expected
