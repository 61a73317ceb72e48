"""Approvals: a PAUSE that can end (docs/approvals.md).

Every PAUSE verdict is stored together with an approval request bound to the exact action (`binding`). Approvers
resolve it requirement by requirement (`state`); the agent resumes with it, and the resume is evaluated again on the
current governance and checked against the binding before the approval is consumed, once (`resume`). An `executed`
stage that nothing allowed or approved becomes a finding.

- `binding`: what an approval is bound to, its digest and the differences between two actions. Pure.
- `state`: an approval's lifecycle, computed from its stored events and the clock, and who may move it. Pure.
- `resume`: what a resume or an `executed` report does with an approval. Pure.
- `workflow`: the use cases that move a request (approve, reject, withdraw), in one locked transaction each.
"""
