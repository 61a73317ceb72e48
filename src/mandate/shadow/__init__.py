"""Shadow evaluation: what a candidate governance bundle would have decided over the stored history.

`run.shadow(url, bundle, window)` → a `ShadowResult` (`tally.Tally`: verdict transitions, groupings, examples,
decisions the candidate cannot evaluate); `gates.check` measures publish gates against it; `report` renders it
(terminal, JSON, HTML). docs/shadow.md is the user's guide.
"""
