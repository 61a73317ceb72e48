"""The demo: the original Mandate's example agents (`scenarios.py`, shared with `examples/`), played through the
SDK against a local server by `mandate demo` (`command.py`)."""
