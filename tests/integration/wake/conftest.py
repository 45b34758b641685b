"""The kenv fixture: Kubernetes API stand-ins and gateways on them."""
import pytest

from kubefix import KubeEnv   # tests/lib, on the path from ../conftest.py


@pytest.fixture
def kenv(tmp_path, redis_server, make_gateway):
    e = KubeEnv(tmp_path, redis_server, make_gateway)
    yield e
    e.stop()
