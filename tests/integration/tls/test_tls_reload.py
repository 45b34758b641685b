"""SIGHUP reloads the certificates without dropping connections: a long
download on an old connection completes while new connections get the new
certificate. A pair that fails to load keeps the certificate it had, with
the file and the reason logged; a reload that cannot build a usable set
keeps the old set whole. With several workers the supervisor forwards
SIGHUP to each."""
import hashlib
import http.client
import os
import signal

import gwtest
from backend import payload
from tlstest import APPS, peer_cn, replace_pair

HOST = f"a.{APPS}"
WILD = [f"*.{APPS}"]


def cn_for(g, sni=HOST):
    s = g.wrap(sni)
    cn = peer_cn(s)
    s.close()
    return cn


def test_long_download_survives_reload_new_connections_get_new_cert(tgw, pki):
    n = 48 * 1024 * 1024
    s = tgw.wrap(HOST, timeout=30)
    assert peer_cn(s) == "wildcard"
    s.sendall(f"GET /bytes/{n} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    c = http.client.HTTPResponse(s)
    c.begin()
    assert c.status == 200 and int(c.getheader("Content-Length")) == n
    h = hashlib.sha256()
    first = c.read(1 << 20)
    h.update(first)

    replace_pair(pki, tgw.certdir, "wildcard", "wildcard-2", WILD)
    tgw.reload()
    assert cn_for(tgw) == "wildcard-2"
    r, _, cn = tgw.https("GET", "/echo", HOST)
    assert r.status == 200 and cn == "wildcard-2"

    got = len(first)
    while got < n:  # the old connection, on the old certificate, goes on
        chunk = c.read(min(1 << 20, n - got))
        assert chunk, f"download cut at {got} of {n} bytes"
        h.update(chunk)
        got += len(chunk)
    assert h.hexdigest() == hashlib.sha256(payload(n)).hexdigest()
    s.sendall(f"GET /echo HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())  # still alive
    c = http.client.HTTPResponse(s)
    c.begin()
    assert c.status == 200
    s.close()
    assert "reloaded 4 certificate(s)" in tgw.stderr()


def test_broken_new_cert_keeps_the_old_one(tgw, pki):
    crt = os.path.join(tgw.certdir, "wildcard.crt")
    with open(crt, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    replace_pair(pki, tgw.certdir, "exact", "exact-2", [f"app-exact.{APPS}"])
    tgw.reload()
    assert cn_for(tgw) == "wildcard"                    # kept
    assert cn_for(tgw, f"app-exact.{APPS}") == "exact-2"  # the good one is renewed
    err = tgw.stderr()
    assert f"{crt}: cannot load the certificate:" in err
    assert "'wildcard' keeps the certificate loaded before" in err


def test_key_mismatch_keeps_the_old_one(tgw, pki):
    # a renewal caught half-way: new key, old certificate
    other = os.path.join(tgw.certdir, ".other")
    os.mkdir(other)
    pki.issue(os.path.join(other, "x.crt"), os.path.join(other, "x.key"), "x", ["x.test"])
    os.replace(os.path.join(other, "x.key"), os.path.join(tgw.certdir, "wildcard.key"))
    tgw.reload()
    assert cn_for(tgw) == "wildcard"
    assert "wildcard.key" in tgw.stderr()
    assert ("does not match the certificate" in tgw.stderr() or
            "key values mismatch" in tgw.stderr())
    r, _, cn = tgw.https("GET", "/echo", HOST)
    assert r.status == 200 and cn == "wildcard"


def test_expired_new_cert_keeps_the_old_one(tgw, pki):
    replace_pair(pki, tgw.certdir, "wildcard", "wildcard-expired", WILD, days=-1)
    tgw.reload()
    assert cn_for(tgw) == "wildcard"
    assert "wildcard.crt: the certificate expired on" in tgw.stderr()


def test_added_and_removed_pairs(tgw, pki):
    pki.issue(os.path.join(tgw.certdir, "extra.crt"), os.path.join(tgw.certdir, "extra.key"),
              "extra", ["extra.example.com"])
    os.unlink(os.path.join(tgw.certdir, "exact.crt"))
    os.unlink(os.path.join(tgw.certdir, "exact.key"))
    tgw.reload()
    assert cn_for(tgw, "extra.example.com") == "extra"
    assert cn_for(tgw, f"app-exact.{APPS}") == "wildcard"  # the wildcard covers it now
    assert "'exact' is no longer in" in tgw.stderr()


def test_unusable_set_keeps_everything(tgw, pki):
    os.unlink(os.path.join(tgw.certdir, "default.crt"))   # the default_cert
    replace_pair(pki, tgw.certdir, "wildcard", "wildcard-2", WILD)
    tgw.reload()
    assert "reload: [tls] default_cert 'default'" in tgw.stderr()
    assert "keeping the 4 certificate(s) loaded before" in tgw.stderr()
    assert cn_for(tgw) == "wildcard"   # nothing of the failed set was taken
    assert cn_for(tgw, "default.example.net") == "default"


def test_supervisor_forwards_sighup_to_every_worker(backend, make_tls_gateway, pki, certdir):
    g = make_tls_gateway({HOST: [backend.addr]}, workers=2)
    gwtest.wait_for(lambda: g.stderr().count("(TLS)") == 2, timeout=10)
    replace_pair(pki, certdir, "wildcard", "wildcard-2", WILD)
    g.reload(lines=2)
    assert "SIGHUP: forwarded to 2 workers" in g.stderr()
    # SO_REUSEPORT spreads these over both workers
    assert {cn_for(g) for _ in range(16)} == {"wildcard-2"}


def test_sighup_without_tls_is_harmless(gw):
    gw.proc.send_signal(signal.SIGHUP)
    # no [tls]: the reload is the configuration's alone
    gwtest.wait_for(lambda: "applied (1 listener(s)" in gw.stderr(), timeout=5)
    assert "certificate" not in gw.stderr()
    r, _ = gw.request("GET", "/echo", "app.test")
    assert r.status == 200
