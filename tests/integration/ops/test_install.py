"""`meson install --destdir`: binaries, configuration, unit, sysusers,
tmpfiles and docs where Debian operators expect them, with the unit's
paths rewritten for the build's prefix."""
import json
import os
import shutil
import subprocess

import pytest

import gwtest

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(gwtest.GATEWAY_BIN)))
pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "build.ninja")),
                                reason="GATEWAY_BIN is not inside a meson build directory")


def options():
    out = subprocess.run(["meson", "introspect", "--buildoptions", BUILD],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return {o["name"]: o["value"] for o in json.loads(out)}


def unit_dir():
    r = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                       capture_output=True, text=True)
    return r.stdout.strip() or None


def install(dest):
    r = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", str(dest), "--no-rebuild",
                        "--quiet"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def under(dest, path):
    return os.path.join(str(dest), path.lstrip("/"))


def test_install_layout(tmp_path):
    o = options()
    prefix = o["prefix"]
    bindir = os.path.join(prefix, o["bindir"])
    sysconfdir = os.path.join(prefix, o["sysconfdir"])
    docdir = os.path.join(prefix, o["datadir"], "doc", "gateway")
    dest = tmp_path / "root"
    install(dest)

    for b in ("gateway", "gatewayctl"):
        p = under(dest, os.path.join(bindir, b))
        assert os.access(p, os.X_OK), p
    conf = under(dest, os.path.join(sysconfdir, "gateway", "gateway.conf"))
    with open(conf) as f, open(os.path.join(gwtest.REPO, "conf", "gateway.conf")) as g:
        assert f.read() == g.read()
    assert oct(os.stat(conf).st_mode & 0o777) == "0o640"
    # the installed binary accepts the installed configuration
    r = subprocess.run([under(dest, os.path.join(bindir, "gateway")), "-t", "-c", conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    for doc in ("README.md", "operations.md", "troubleshooting.md", "configuration.md",
                "gateway.conf.example"):
        assert os.path.isfile(under(dest, os.path.join(docdir, doc))), doc

    udir = o["systemdsystemunitdir"] or unit_dir() or os.path.join(prefix, "lib/systemd/system")
    unit = under(dest, os.path.join(udir, "gateway.service"))
    with open(unit) as f:
        text = f.read()
    assert f"ExecStart={bindir}/gateway -c {sysconfdir}/gateway/gateway.conf\n" in text
    assert f"ExecStartPre={bindir}/gateway -t -c {sysconfdir}/gateway/gateway.conf\n" in text
    assert f"Documentation=file://{docdir}/operations.md" in text
    assert "/usr/bin/gateway" not in text or bindir == "/usr/bin"

    sysusers = subprocess.run(["pkg-config", "--variable=sysusersdir", "systemd"],
                              capture_output=True, text=True).stdout.strip()
    tmpfiles = subprocess.run(["pkg-config", "--variable=tmpfilesdir", "systemd"],
                              capture_output=True, text=True).stdout.strip()
    if sysusers:
        with open(under(dest, os.path.join(sysusers, "gateway.conf"))) as f:
            assert f.read().splitlines()[-1].startswith("u gateway ")
    if tmpfiles:
        with open(under(dest, os.path.join(tmpfiles, "gateway.conf"))) as f:
            assert f"z {sysconfdir}/gateway/gateway.conf 0640 root gateway -" in f.read()


def test_reinstall_keeps_an_edited_configuration(tmp_path):
    o = options()
    dest = tmp_path / "root"
    install(dest)
    conf = under(dest, os.path.join(o["prefix"], o["sysconfdir"], "gateway", "gateway.conf"))
    with open(conf, "a") as f:
        f.write("\n# edited by the operator\n")
    r = install(dest)
    with open(conf) as f:
        assert f.read().endswith("# edited by the operator\n")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_installed_unit_verifies(tmp_path):
    o = options()
    dest = tmp_path / "root"
    install(dest)
    udir = o["systemdsystemunitdir"] or unit_dir() or os.path.join(o["prefix"], "lib/systemd/system")
    bindir = os.path.join(o["prefix"], o["bindir"])
    with open(under(dest, os.path.join(udir, "gateway.service"))) as f:
        text = f.read()
    # verify checks that ExecStart exists: point it at the installed copy
    staged = tmp_path / "gateway.service"
    staged.write_text(text.replace(f"{bindir}/gateway", under(dest, f"{bindir}/gateway")))
    r = subprocess.run(["systemd-analyze", "verify", str(staged)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
