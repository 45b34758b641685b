"""[tls] configuration: precise errors at load time, and `gateway -t`
checks the certificates too (each broken pair named with its reason)."""
import os
import subprocess

import pytest

import gwtest


def check(tmp_path, text):
    p = tmp_path / "t.conf"
    p.write_text(text)
    return subprocess.run([gwtest.GATEWAY_BIN, "-t", "-c", str(p)], capture_output=True,
                          text=True, timeout=20), str(p)


@pytest.mark.parametrize("line,needle", [
    ("min_version = 1.1", "expected one of 1.2, 1.3, got '1.1'"),
    ("redirect = 303", "expected one of off, 301, 302, 307, 308, got '303'"),
    ("hsts = includeSubDomains", "expected a value like 'max-age=31536000"),
    ("redirect_port = 0", "redirect_port"),
    ("acme_backend = solver:8089", "acme_backend"),
    ("max_handshakes = 0", "max_handshakes"),
    ("handshake_timeout = 10ms", "handshake_timeout"),
])
def test_bad_values_name_file_line_and_key(tmp_path, line, needle):
    r, path = check(tmp_path, f"[tls]\n{line}\n")
    assert r.returncode != 0
    assert f"{path}:2: [tls]" in r.stderr
    assert needle in r.stderr


def test_listen_needs_cert_dir(tmp_path):
    r, _ = check(tmp_path, "[tls]\nlisten = 127.0.0.1:8443\n")
    assert r.returncode != 0
    assert "[tls] listen needs [tls] cert_dir" in r.stderr


def test_tls_and_plain_cannot_share_an_address(tmp_path, certdir):
    r, _ = check(tmp_path, f"[gateway]\nlisten = 127.0.0.1:8443\n[tls]\n"
                           f"listen = 127.0.0.1:8443\ncert_dir = {certdir}\n")
    assert r.returncode != 0
    assert "[tls] listen 127.0.0.1:8443 is also a plain listen address" in r.stderr


def test_check_loads_the_certificates(tmp_path, certdir):
    good = f"[tls]\nlisten = 127.0.0.1:8443\ncert_dir = {certdir}\ndefault_cert = default\n"
    r, _ = check(tmp_path, good)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(certdir, "exact.key"), "w") as f:
        f.write("garbage\n")
    r, _ = check(tmp_path, good)
    assert r.returncode != 0
    assert f"{certdir}/exact.key: cannot use the private key" in r.stderr
    r, _ = check(tmp_path, good.replace("default_cert = default", "default_cert = nope"))
    assert "default_cert 'nope': no usable pair of that name" in r.stderr


def test_bad_ciphers_refuse_to_start(tmp_path, certdir):
    r, _ = check(tmp_path, f"[tls]\nlisten = 127.0.0.1:8443\ncert_dir = {certdir}\n"
                           "ciphers = NOT-A-CIPHER\n")
    assert r.returncode != 0
    assert "[tls] ciphers 'NOT-A-CIPHER'" in r.stderr


def test_start_fails_clearly_without_usable_certificates(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = tmp_path / "g.conf"
    p.write_text(f"[gateway]\nlisten = 127.0.0.1:{gwtest.free_port()}\n"
                 f"[tls]\nlisten = 127.0.0.1:{gwtest.free_port()}\ncert_dir = {empty}\n")
    r = subprocess.run([gwtest.GATEWAY_BIN, "-c", str(p)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1
    assert f"no usable certificate in {empty}" in r.stderr
