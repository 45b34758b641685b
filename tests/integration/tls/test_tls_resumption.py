"""Session resumption with tickets: a second connection resumes (TLS 1.3
and 1.2, Python and openssl s_client), across workers (one secret per
start), across gateway processes sharing session_ticket_key_file, and not
at all with session_ticket_rotate = 0."""
import os
import subprocess

import pytest

from tlstest import APPS

HOST = f"a.{APPS}"
REQ = f"GET /echo HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()


def session_from(g, ctx):
    """A full exchange (TLS 1.3 tickets arrive after the handshake)."""
    s = g.wrap(HOST, ctx=ctx)
    s.sendall(REQ)
    while s.recv(65536):
        pass
    sess = s.session
    reused = s.session_reused
    s.close()
    return sess, reused


def resumes(g, ctx, sess):
    s = g.wrap(HOST, ctx=ctx, session=sess)
    ok = s.session_reused
    s.sendall(REQ)
    while s.recv(65536):
        pass
    s.close()
    return ok


@pytest.mark.parametrize("maximum", [None, "TLSv1_2"])
def test_python_resumes(tgw, maximum):
    import ssl
    ctx = tgw.context(maximum=getattr(ssl.TLSVersion, maximum) if maximum else None)
    sess, reused = session_from(tgw, ctx)
    assert not reused and sess is not None
    assert resumes(tgw, ctx, sess)


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_openssl_s_client_resumes(tgw, tmp_path, version):
    sess = str(tmp_path / "sess.pem")
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{tgw.tls_port}", "-servername",
            HOST, "-CAfile", tgw.ca, "-verify_return_error", "-ign_eof", version]
    r = subprocess.run(base + ["-sess_out", sess], input=REQ, capture_output=True,
                       timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b"New, TLSv1" in r.stdout
    r = subprocess.run(base + ["-sess_in", sess], input=REQ, capture_output=True,
                       timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b"Reused, TLSv1" in r.stdout


def test_resumes_across_workers(backend, make_tls_gateway):
    g = make_tls_gateway({HOST: [backend.addr]}, workers=2)
    ctx = g.context()
    sess, _ = session_from(g, ctx)
    # SO_REUSEPORT sends some of these to the other worker
    assert all(resumes(g, ctx, sess) for _ in range(12))


def test_resumes_across_gateways_sharing_a_key_file(backend, make_tls_gateway, tmp_path):
    key = tmp_path / "ticket.key"
    key.write_bytes(os.urandom(48))
    conf = f"session_ticket_key_file = {key}\n"
    a = make_tls_gateway({HOST: [backend.addr]}, config=conf, subdir="a")
    b = make_tls_gateway({HOST: [backend.addr]}, config=conf, subdir="b")
    ctx = a.context()
    sess, _ = session_from(a, ctx)
    assert resumes(b, ctx, sess)
    # without the shared file, another gateway cannot read the ticket
    c = make_tls_gateway({HOST: [backend.addr]}, subdir="c")
    assert not resumes(c, ctx, sess)


def test_tickets_off(backend, make_tls_gateway):
    g = make_tls_gateway({HOST: [backend.addr]}, config="session_ticket_rotate = 0\n")
    ctx = g.context()
    sess, _ = session_from(g, ctx)
    assert not resumes(g, ctx, sess)


def test_short_key_file_is_refused(backend, make_gateway, certdir, tmp_path):
    key = tmp_path / "short.key"
    key.write_bytes(b"too short")
    conf = tmp_path / "g.conf"
    conf.write_text(f"[tls]\nlisten = 127.0.0.1:1\ncert_dir = {certdir}\n"
                    f"session_ticket_key_file = {key}\n")
    import gwtest
    r = subprocess.run([gwtest.GATEWAY_BIN, "-t", "-c", str(conf)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0
    assert "needs at least 32 bytes" in r.stderr
