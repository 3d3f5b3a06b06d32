import pytest

from .live import LiveServer


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """One embedded-mode daphne (SQLite file, in-memory channel layer) for all device tests."""
    server = LiveServer(tmp_path_factory.mktemp("live"))
    server.migrate()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fuzz_token(live):
    return live.make_devices({"fuzz-target": {}})["fuzz-target"]["token"]
