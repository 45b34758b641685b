"""conf/kubernetes/: every object parses and is a known kind, the pieces
refer to each other correctly (selectors, ports, probes, Secret, RBAC
subject), the ConfigMap's gateway.conf passes `gateway -t`, RBAC grants
exactly the verbs activator/kube_*.c use, and kubectl accepts the whole set
(kustomize offline; client dry run against the API stand-in's discovery)."""
import configparser
import os
import re
import shutil
import subprocess

import pytest

import gwtest

yaml = pytest.importorskip("yaml")   # python3-yaml
KDIR = os.path.join(gwtest.REPO, "conf", "kubernetes")
KUBECTL = shutil.which("kubectl")

KNOWN = {
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "Service"), ("apps/v1", "Deployment"), ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def kustomization():
    with open(os.path.join(KDIR, "kustomization.yaml")) as f:
        return yaml.safe_load(f)


def objects():
    out = []
    for name in kustomization()["resources"]:
        with open(os.path.join(KDIR, name)) as f:
            out += [(name, d) for d in yaml.safe_load_all(f) if d]
    return out


def one(kind, name):
    found = [o for _, o in objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def gateway_conf():
    cm = one("ConfigMap", "gateway-config")
    p = configparser.ConfigParser(inline_comment_prefixes=None, strict=True)
    p.read_string(cm["data"]["gateway.conf"])
    return cm["data"]["gateway.conf"], p


def container(dep, name):
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def port_named(c, name):
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name)


def test_every_file_listed_and_every_object_known():
    listed = set(kustomization()["resources"])
    present = {f for f in os.listdir(KDIR) if f.endswith(".yaml") and f != "kustomization.yaml"}
    assert listed == present
    seen = set()
    for fname, o in objects():
        assert (o["apiVersion"], o["kind"]) in KNOWN, f"{fname}: {o['apiVersion']} {o['kind']}"
        md = o["metadata"]
        assert DNS1123.match(md["name"]), md["name"]
        if o["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in md, f"{fname}: {o['kind']} is cluster-scoped"
        else:
            assert md.get("namespace"), f"{fname}: {o['kind']}/{md['name']} has no namespace"
        key = (o["kind"], md.get("namespace"), md["name"])
        assert key not in seen, key
        seen.add(key)
    # namespaced objects live in namespaces that are created here
    namespaces = {o["metadata"]["name"] for _, o in objects() if o["kind"] == "Namespace"}
    assert {ns for _, ns, _ in seen if ns} <= namespaces


def test_selectors_match_their_pods():
    gw = one("Deployment", "gateway")
    labels = gw["spec"]["template"]["metadata"]["labels"]
    sel = gw["spec"]["selector"]["matchLabels"]
    assert sel.items() <= labels.items()
    assert gw["spec"]["replicas"] >= 2
    assert one("Service", "gateway")["spec"]["selector"].items() <= labels.items()
    assert one("PodDisruptionBudget", "gateway")["spec"]["selector"]["matchLabels"].items() \
        <= labels.items()
    assert one("PodDisruptionBudget", "gateway")["spec"]["minAvailable"] < gw["spec"]["replicas"]
    redis = one("Deployment", "redis")
    rlabels = redis["spec"]["template"]["metadata"]["labels"]
    assert redis["spec"]["selector"]["matchLabels"].items() <= rlabels.items()
    assert one("Service", "redis")["spec"]["selector"].items() <= rlabels.items()
    # the gateway's selector does not catch Redis, and the other way round
    assert not sel.items() <= rlabels.items()


def test_service_is_the_single_public_ip_with_client_addresses():
    svc = one("Service", "gateway")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    c = container(one("Deployment", "gateway"), "gateway")
    names = {p["name"] for p in c["ports"]}
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in names, p
    assert "admin" not in {p["targetPort"] for p in svc["spec"]["ports"]}


def test_ports_and_probes_match_the_config():
    _, conf = gateway_conf()
    c = container(one("Deployment", "gateway"), "gateway")
    host, port = conf["gateway"]["listen"].rsplit(":", 1)
    assert host == "0.0.0.0" and int(port) == port_named(c, "http")
    ahost, aport = conf["admin"]["listen"].rsplit(":", 1)
    assert ahost == "0.0.0.0", "the kubelet probes the pod IP, not loopback"
    assert int(aport) == port_named(c, "admin")
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert c["args"] == ["-c", "/etc/gateway/gateway.conf"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] == "/etc/gateway/gateway.conf" and mount["subPath"] == "gateway.conf"


def test_configmap_config_passes_gateway_t(tmp_path):
    text, conf = gateway_conf()
    secret = tmp_path / "password"
    secret.write_text("from-the-secret\n")
    staged = tmp_path / "gateway.conf"
    staged.write_text(text.replace(conf["redis"]["password_file"], str(secret)))
    r = subprocess.run([gwtest.GATEWAY_BIN, "-t", "-c", str(staged)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    # and the original fails only for the missing secret file, nothing else
    orig = tmp_path / "orig.conf"
    orig.write_text(text)
    r = subprocess.run([gwtest.GATEWAY_BIN, "-t", "-c", str(orig)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0 and "password_file: cannot read" in r.stderr


def test_redis_wiring():
    _, conf = gateway_conf()
    gw = one("Deployment", "gateway")
    c = container(gw, "gateway")
    pw_dir = os.path.dirname(conf["redis"]["password_file"])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == pw_dir)
    vol = next(v for v in gw["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    secret = one("Secret", vol["secret"]["secretName"])
    assert os.path.basename(conf["redis"]["password_file"]) in secret["stringData"]
    assert "password" not in conf["redis"], "the password belongs in the Secret"
    # the Redis server reads the same key of the same Secret
    env = container(one("Deployment", "redis"), "redis")["env"]
    ref = next(e for e in env if e["name"] == "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    # numeric until [redis] address resolves names: the pinned ClusterIP
    svc = one("Service", "redis")
    assert conf["redis"]["address"] == f"{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"


def duration_s(v):
    m = re.match(r"^(\d+)(ms|s|m|h)?$", v)
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def test_grace_period_covers_pre_stop_and_drain():
    _, conf = gateway_conf()
    spec = one("Deployment", "gateway")["spec"]["template"]["spec"]
    c = container(one("Deployment", "gateway"), "gateway")
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = duration_s(conf["gateway"].get("drain_timeout", "30s"))
    assert spec["terminationGracePeriodSeconds"] > pre_stop + drain


def test_pods_are_locked_down():
    for name in ("gateway", "redis"):
        spec = one("Deployment", name)["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "add" not in sc["capabilities"]
            assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    spec = one("Deployment", "gateway")["spec"]["template"]["spec"]
    assert spec["affinity"]["podAntiAffinity"] and spec["topologySpreadConstraints"]


def verbs_kube_c_uses():
    """What the Kubernetes client sends, read from its sources: the
    scale subresource is touched by kube_scale.c, EndpointSlices by
    kube_watch.c, and every request names its method."""
    def methods(name):
        with open(os.path.join(gwtest.REPO, "activator", name)) as f:
            src = f.read()
        return src, set(re.findall(r'\.method\s*=\s*"(\w+)"', src))
    uses = {}
    scale_src, scale = methods("kube_scale.c")
    assert "/scale" in scale_src and scale <= {"GET", "PATCH"}, scale
    uses[("apps", "deployments/scale")] = {m.lower() for m in scale}
    watch_src, watch = methods("kube_watch.c")
    assert "/endpointslices" in watch_src and watch == {"GET"}, watch
    uses[("discovery.k8s.io", "endpointslices")] = {"list"} | (
        {"watch"} if "watch=1" in watch_src else set())
    with open(os.path.join(gwtest.REPO, "activator", "curlev.c")) as f:
        curl = f.read()
    # the one place a method reaches libcurl: from the request options
    assert "CURLOPT_POST," not in curl and "CURLOPT_UPLOAD" not in curl
    return uses


def test_rbac_grants_exactly_what_the_code_uses():
    role = one("ClusterRole", "gateway-activator")
    granted = {}
    for rule in role["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                granted.setdefault((g, r), set()).update(rule["verbs"])
    assert granted == verbs_kube_c_uses()
    assert not any("*" in r.get("verbs", []) + r.get("resources", []) for r in role["rules"])
    # bound to the Deployment's service account, in the apps' namespace
    sa = one("Deployment", "gateway")["spec"]["template"]["spec"]["serviceAccountName"]
    one("ServiceAccount", sa)
    for _, o in objects():
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert o["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                    "kind": "ClusterRole", "name": "gateway-activator"}
            assert o["subjects"] == [{"kind": "ServiceAccount", "name": sa,
                                      "namespace": "gateway"}]


def kustomize_build():
    r = subprocess.run([KUBECTL, "kustomize", KDIR], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(not KUBECTL, reason="kubectl is not installed")
def test_kustomize_builds_offline():
    docs = [d for d in yaml.safe_load_all(kustomize_build()) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == \
        sorted((o["kind"], o["metadata"]["name"]) for _, o in objects())
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gateway")
    assert container(dep, "gateway")["image"] == "gateway:0.1.0"


@pytest.mark.skipif(not KUBECTL or not shutil.which("openssl"),
                    reason="kubectl or openssl is not installed")
def test_kubectl_client_dry_run(tmp_path):
    built = tmp_path / "all.yaml"
    built.write_text(kustomize_build())
    api = gwtest.KubeAPI(tmp_path, tls=True)   # kubectl sends tokens only over TLS
    try:
        cfg = tmp_path / "kubeconfig"
        cfg.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {{server: "{api.url}", certificate-authority: "{api.ca_file}"}}
users:
- name: gw
  user: {{tokenFile: "{api.token_file}"}}
contexts:
- name: standin
  context: {{cluster: standin, user: gw}}
current-context: standin
""")
        r = subprocess.run([KUBECTL, "--kubeconfig", str(cfg), "--cache-dir",
                            str(tmp_path / "cache"), "create", "--dry-run=client",
                            "--validate=false", "-f", str(built), "-o", "name"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        names = sorted(r.stdout.split())
        assert len(names) == len(objects()), names
        assert "deployment.apps/gateway" in names
        assert "poddisruptionbudget.policy/gateway" in names
        assert "clusterrole.rbac.authorization.k8s.io/gateway-activator" in names
        # a client dry run changes nothing on the server
        assert api.stats()["replicas"] == {}
    finally:
        api.stop()
