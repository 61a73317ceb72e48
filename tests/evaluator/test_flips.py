"""The minimal flip set, beyond the data-driven cases: absent signals, exists, the budget, unsound input."""

import json

from mandate.evaluator import Flip, Verdict, flips

from .builders import payment_decision, payment_policy, payment_spec
from .test_engine import run, snapshot_of


def explanation(*policies: object, context: dict[str, object]) -> dict[str, object]:
    evaluation = run(payment_decision(context), payment_spec(), snapshot_of(*policies))  # type: ignore[arg-type]
    loaded: dict[str, object] = json.loads(json.dumps(evaluation.to_dict()))
    return loaded


def test_an_absent_signal_can_flip_by_being_given_a_value() -> None:
    e = explanation(payment_policy("p", "BLOCK", ("approved", "==", True)), context={"amount": 5})

    found = flips(e, Verdict.OBSERVE)

    assert [f.to_dict("OBSERVE") for f in found] == [
        {
            "changes": [{"signal": "approved", "value": True}],
            "verdict": "BLOCK",
            "sentence": "would be BLOCK instead of OBSERVE if approved were true",
        }
    ]


def test_exists_names_no_value_so_only_other_conditions_suggest_one() -> None:
    e = explanation(
        payment_policy("p", "PAUSE", ("currency", "exists", True), ("currency", "==", "EUR")),
        context={"amount": 5},
    )

    assert [f.sentence("OBSERVE") for f in flips(e, Verdict.OBSERVE)] == [
        "would be PAUSE instead of OBSERVE if currency were EUR"
    ]


def test_the_search_stops_at_its_budget() -> None:
    e = explanation(payment_policy("p", "BLOCK", ("amount", ">", 100)), context={"amount": 500})

    assert flips(e, Verdict.OBSERVE, budget=1) == ()  # 101, the nearest value tried first, is still over 100
    assert flips(e, Verdict.OBSERVE, budget=2) == (Flip((("amount", 100),), Verdict.OBSERVE),)


def test_an_explanation_that_does_not_reproduce_its_verdict_gets_no_flips() -> None:
    e = explanation(payment_policy("p", "BLOCK", ("amount", ">", 100)), context={"amount": 500})

    assert flips(e, Verdict.OBSERVE) != ()
    assert flips({**e, "verdict": "ALLOW"}, Verdict.OBSERVE) == ()
