"""The configuration: every key documented, -t validates, errors are precise."""
import os
import re
import subprocess

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")
GATEWAY_BIN = os.environ.get("GATEWAY_BIN", os.path.join(ROOT, "build", "gateway", "gateway"))


def binary_keys():
    """(section, key) pairs from the binary's own key table."""
    out = subprocess.run([GATEWAY_BIN, "--help-config"], capture_output=True, text=True,
                         check=True).stdout
    keys, section = [], None
    for line in out.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
        elif re.match(r"^[a-z_]+ = ", line):
            keys.append((section, line.split(" = ")[0]))
    return keys


def test_binary_lists_keys():
    keys = binary_keys()
    assert ("client", "header_timeout") in keys
    assert len(keys) >= 20


def test_every_key_in_sample_conf_and_docs():
    with open(os.path.join(ROOT, "conf", "gateway.conf")) as f:
        conf = f.read()
    with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
        docs = f.read()
    missing = []
    for section, key in binary_keys():
        # the sample lists it under its section, commented out
        part = conf.split(f"[{section}]", 1)
        if len(part) < 2 or not re.search(rf"^#{key} =", part[1].split("\n[", 1)[0], re.M):
            missing.append(f"conf/gateway.conf: [{section}] {key}")
        dpart = docs.split(f"## [{section}]", 1)
        if len(dpart) < 2 or f"| `{key}` |" not in dpart[1].split("\n## ", 1)[0]:
            missing.append(f"docs/configuration.md: [{section}] {key}")
    assert not missing, "\n".join(missing)


def test_sample_conf_is_valid():
    r = subprocess.run([GATEWAY_BIN, "-t", "-c", os.path.join(ROOT, "conf", "gateway.conf")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("text,line,needle", [
    ("[client]\nheader_timeout = fast\n", 2, "[client] header_timeout"),
    ("[client]\n\nheader_timeot = 1s\n", 3, "unknown key"),
    ("[nonsense]\nx = 1\n", 1, "[nonsense]: unknown section"),  # the header's own line
    ("[client]\nbuffer_size = 1k\n", 2, "buffer_size"),
    ("[gateway]\nworkers = many\n", 2, "workers"),
    ("[gateway]\nlisten = 127.0.0.1:99999\n", 2, "listen"),
    ("[routes]\napp.test = not-an-address\n", 2, "app.test"),
    ("[gateway]\nworkers = 1\n[exec]\na.test = 127.0.0.1:1 " + "x" * 300 + "\n", 4,
     "line longer than 199 characters"),
])
def test_bad_config_names_file_line_and_key(tmp_path, text, line, needle):
    p = tmp_path / "bad.conf"
    p.write_text(text)
    r = subprocess.run([GATEWAY_BIN, "-t", "-c", str(p)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert f"{p}:{line}:" in r.stderr
    assert needle in r.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    r = subprocess.run([GATEWAY_BIN, "-t", "-c", str(tmp_path / "nope.conf")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "nope.conf" in r.stderr
