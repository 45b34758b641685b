"""The kenv fixture: Kubernetes API stand-ins and gateways on them."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from kubefix import KubeEnv  # noqa: E402


@pytest.fixture
def kenv(tmp_path, redis_server, make_gateway):
    e = KubeEnv(tmp_path, redis_server, make_gateway)
    yield e
    e.stop()
