"""The Kubernetes API stand-in checked with a client nobody here wrote:
kubectl must get, scale and watch the objects the gateway uses (over TLS,
since kubectl sends bearer tokens only over TLS)."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "lib"))
import gwtest  # noqa: E402

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(not KUBECTL or not shutil.which("openssl"),
                                reason="kubectl or openssl is not installed")


@pytest.fixture
def kctl(tmp_path):
    k = gwtest.KubeAPI(tmp_path, pod_start_delay=0.2, tls=True)
    k.control("deployments", {"namespace": "apps", "name": "web"})
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {{server: "{k.url}", certificate-authority: "{k.ca_file}"}}
users:
- name: gw
  user: {{tokenFile: "{k.token_file}"}}
contexts:
- name: standin
  context: {{cluster: standin, user: gw, namespace: apps}}
current-context: standin
""")
    base = [KUBECTL, "--kubeconfig", str(cfg), "--cache-dir", str(tmp_path / "cache")]

    def run(*args, timeout=30, check=True):
        r = subprocess.run([*base, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, r.stderr[-2000:]
        return r
    run.api = k
    run.base = base
    yield run
    k.stop()


def test_kubectl_gets_and_scales(kctl):
    d = json.loads(kctl("get", "deployment", "web", "-o", "json").stdout)
    assert d["kind"] == "Deployment" and d["spec"]["replicas"] == 0
    assert "deployment.apps/web" in kctl("get", "deployments", "-o", "name").stdout
    kctl("scale", "deployment", "web", "--replicas=1")
    assert kctl.api.stats()["replicas"]["apps/web"] == 1
    gwtest.wait_for(lambda: json.loads(kctl(
        "get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "json"
    ).stdout)["items"], timeout=10)


def test_kubectl_watches_endpointslices(kctl):
    watch = subprocess.Popen([*kctl.base, "get", "endpointslices", "--watch", "-o", "json",
                              "-l", "kubernetes.io/service-name=web"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        kctl("scale", "deployment", "web", "--replicas=1")
        os.set_blocking(watch.stdout.fileno(), False)
        out = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and '"EndpointSlice"' not in out:
            out += (watch.stdout.read() or b"").decode(errors="replace")
            time.sleep(0.1)
        assert '"kind": "EndpointSlice"' in out, out
    finally:
        watch.kill()
        watch.wait()


def test_kubectl_is_refused_a_wrong_token(kctl, tmp_path):
    cfg = tmp_path / "wrong"
    text = (tmp_path / "kubeconfig").read_text()
    cfg.write_text(text.replace(f'tokenFile: "{kctl.api.token_file}"', 'token: "nope"'))
    r = subprocess.run([KUBECTL, "--kubeconfig", str(cfg), "--cache-dir", str(tmp_path / "c2"),
                        "get", "deployment", "web"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "Unauthorized" in r.stderr or "credentials" in r.stderr
