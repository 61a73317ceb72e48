"""Mandate's benchmarks: programs, not timed tests (see bench/README.md).

Every benchmark measures its reference in the same run, because this kind of machine (2 shared cores) is only fair
for ratios measured side by side. `python -m bench all` runs them all and rewrites docs/benchmarks.md.
"""
