"""Use cases of ingestion: attribute and decide a decision, prepare its one statement, store it, record an outcome.

The ingestion path reads governance from the in-memory cache and writes the decision, its verdict and its two
timeline entries with ONE SQL statement (data-modifying CTEs, db/writes.py), which PostgreSQL runs atomically: one
database round trip per decision, and never a decision without its verdict.

    request.py     DecisionRequest (what an agent sent), IngestResult (the answer), a scope's attribution
    decide.py      §3: check_attribution → decide (spec, signals, scope, evaluate); what would flip a verdict
    approvals.py   what approvals add: a resume's checks, an `executed` stage's finding, a PAUSE's escalation
    prepare.py     prepare: a decision evaluated and its statement's parameters
    ingest.py      submit / existing / record_outcome / record_rejection: storing, with the database
    stages.py      StageReader: the stored stages `executed` stages are judged on, concurrent reads in one query

Replaying a stored decision is `mandate.replay`; a request's problems and `IngestError` are in `mandate.errors`.
"""

from mandate.errors import IngestError, Problem
from mandate.service.approvals import ApprovalFacts, approval_facts, concerns_approvals, stored_binding
from mandate.service.decide import check_attribution, decide, explanation_dict, stored_flips
from mandate.service.ingest import Writer, existing, record_outcome, record_rejection, submit
from mandate.service.prepare import Prepared, prepare
from mandate.service.request import ATTRIBUTION_FIELDS, DecisionRequest, IngestResult, attribution_of, in_utc
from mandate.service.stages import StageReader

__all__ = [
    "ATTRIBUTION_FIELDS",
    "ApprovalFacts",
    "DecisionRequest",
    "IngestError",
    "IngestResult",
    "Prepared",
    "Problem",
    "StageReader",
    "Writer",
    "approval_facts",
    "attribution_of",
    "check_attribution",
    "concerns_approvals",
    "decide",
    "existing",
    "explanation_dict",
    "in_utc",
    "prepare",
    "record_outcome",
    "record_rejection",
    "stored_binding",
    "stored_flips",
    "submit",
]
