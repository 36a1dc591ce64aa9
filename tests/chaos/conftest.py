"""The chaos suite drives the same running stack as the functional tests, with their fixtures."""
from tests.functional.conftest import api, docker_client, make_actor  # noqa: F401
