"""The examples run against the same live server with the demo governance as the SDK tests."""

from tests.client.conftest import demo_server

__all__ = ["demo_server"]
