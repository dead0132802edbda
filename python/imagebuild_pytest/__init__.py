"""pytest fixtures for projects that test against imagebuild, as a plugin.

`pip install imagebuild` (the wheel carries the `imagebuild` binary and the service models) and
the fixtures are there, through the `pytest11` entry point; nothing to copy, nothing to import:

    def test_my_code_builds_an_image(imagebuild_client, imagebuild):
        build_id = my_code.start(imagebuild_client)
        imagebuild.advance(build_id, steps=3)          # no sleeping
        assert imagebuild_client.describe_builds(BuildIds=[build_id])["Builds"][0]["Status"] == "Succeeded"

    def test_my_code_handles_a_failed_scan(imagebuild, imagebuild_scan_client):
        imagebuild.script([{"Resource": "scan", "Status": "Failed", "ErrorCode": "OsLoginFailed"}])
        scan_id = my_code.submit(imagebuild_scan_client)
        imagebuild.advance_scan(scan_id, steps=2)

    def test_my_release_pipeline(imagebuild, imagebuild_catalog_client):
        cs = my_pipeline.add_version(imagebuild_catalog_client)   # StartChangeSet
        imagebuild.advance_change_set(cs, steps=2)                # PREPARING → APPLYING → SUCCEEDED

Fixtures:
- `imagebuild_server` (session): one server per test process (so per pytest-xdist worker:
  `pytest -n auto` gives each worker its own server, and no test sees another's state).
- `imagebuild` (function): that server made fresh for the test — no records, harness settings
  and clock as at start, and the world of `imagebuild_world`.
- `imagebuild_world` (function): override in your conftest to return your own world (a dict in
  the world-file shape); None means the server's starting world (the built-in demo world).
- `imagebuild_client`, `imagebuild_scan_client`, `imagebuild_catalog_client`: boto3 clients of
  the three services (the models come from inside this package; no `add-model`).
- `imagebuild_server_args` (session): extra `imagebuild serve` arguments.

Options: `--imagebuild-store=memory|disk` (ini `imagebuild_store`): an in-memory store (the
default) or a temporary data directory. Builds, scans and change sets stay where they are until
advanced (stages of an hour); `imagebuild.transition("immediate")` lets the worker run them at once.

Environment: IMAGEBUILD_BIN (default: the binary installed with this package), IMAGEBUILD_MODELS
(default: the models shipped in this package).
"""

import pytest

from .server import DEV_KEY, DEV_SECRET, ImageBuild, binary, models  # noqa: F401

__all__ = ["ImageBuild", "binary", "models", "imagebuild", "imagebuild_client", "imagebuild_world"]


def pytest_addoption(parser):
    group = parser.getgroup("imagebuild")
    group.addoption("--imagebuild-store", choices=["memory", "disk"], default=None,
                    help="imagebuild's store for the test server: memory (default) or disk (a temp data dir)")
    parser.addini("imagebuild_store", "imagebuild's store: memory or disk", default="memory")


@pytest.fixture(scope="session")
def imagebuild_server_args():
    """Extra `imagebuild serve` arguments; override in your conftest."""
    return ()


def _store_option(config):
    chosen = config.getoption("--imagebuild-store", default=None)
    try:
        return chosen or config.getini("imagebuild_store") or "memory"
    except ValueError:  # imported, not loaded as a plugin: the option is not registered
        return chosen or "memory"


@pytest.fixture(scope="session")
def imagebuild_server(request, imagebuild_server_args):
    """One server for the test process (each pytest-xdist worker is a process of its own)."""
    server = ImageBuild(extra_args=tuple(imagebuild_server_args), store=_store_option(request.config))
    yield server
    server.stop()


_IMPORTED = {}


def _server_of(request):
    """The session's server; for suites that import the fixtures instead of loading the plugin,
    one started on first use and stopped when the session ends."""
    try:
        return request.getfixturevalue("imagebuild_server")
    except pytest.FixtureLookupError:
        if "server" not in _IMPORTED:
            _IMPORTED["server"] = ImageBuild(store=_store_option(request.config))
            request.config.add_cleanup(lambda: _IMPORTED.pop("server").stop())
        return _IMPORTED["server"]


@pytest.fixture
def imagebuild_world():
    """The world to load; override in your conftest. None: the server's starting (demo) world."""
    return None


@pytest.fixture
def imagebuild(request, imagebuild_world):
    """The session's server, fresh for this test."""
    server = _server_of(request)
    server.fresh(imagebuild_world)
    return server


@pytest.fixture
def imagebuild_client(imagebuild):
    """boto3 `marketplaceimagebuild` client."""
    return imagebuild.client()


@pytest.fixture
def imagebuild_scan_client(imagebuild):
    """boto3 `marketplaceamiscanning` client."""
    return imagebuild.scan_client()


@pytest.fixture
def imagebuild_catalog_client(imagebuild):
    """boto3 `marketplace-catalog` client."""
    return imagebuild.catalog_client()
