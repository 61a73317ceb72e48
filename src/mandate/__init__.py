"""Mandate: a governance control plane for AI agents.

An agent declares what it is about to do (a decision event); Mandate resolves the decision's spec and scope,
evaluates declarative policies with a pure evaluator, answers ALLOW / PAUSE / BLOCK / OBSERVE with a structured
explanation, and stores everything append-only in PostgreSQL.
"""

__version__ = "0.1.0"
