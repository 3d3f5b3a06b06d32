import pytest

from .live import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """An embedded-mode daphne (SQLite file, in-memory channel layer) for this module."""
    server = LiveServer(tmp_path_factory.mktemp("live"))
    server.migrate()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fuzz_token(live):
    return live.make_devices({"fuzz-target": {}})["fuzz-target"]["token"]
