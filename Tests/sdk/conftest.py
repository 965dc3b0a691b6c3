"""Starts `bookend serve` on a free loopback port with a temporary data directory for the SDK tests.

With BOOKEND_SDK_TLS=1 the daemon serves HTTPS with a self-signed certificate made here by openssl,
and the SDKs (which send through `requests`) trust it through REQUESTS_CA_BUNDLE, as a user would.
"""
import os
import shutil
import subprocess
import tempfile
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def bookend():
    binary = os.environ.get("BOOKEND_BIN") or os.path.join(ROOT, ".build", "debug", "bookend")
    data_dir = tempfile.mkdtemp(prefix="bookend-sdk-")
    # Left 0700 as mkdtemp makes it (like `mktemp -d`): as root, bookend serve must still run tasks, whose
    # accounts reach their node folders because the engine gives its data directory o+x (never o+r).
    tls = os.environ.get("BOOKEND_SDK_TLS") == "1"
    arguments = [binary, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0", "--account", "sdkacct"]
    certificate = None
    if tls:
        tls_dir = tempfile.mkdtemp(prefix="bookend-sdk-tls-")
        certificate, tls_key = os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", tls_key, "-out", certificate, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        arguments += ["--tls-cert", certificate, "--tls-key", tls_key]
        previous_bundle = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = certificate
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    endpoint = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Endpoint:"):
            endpoint = line.split(":", 1)[1].strip()
            break
    if endpoint is None:
        process.kill()
        raise RuntimeError("bookend serve did not start:\n" + "".join(lines))
    # Keep draining the server's output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    with open(os.path.join(data_dir, "account.key")) as handle:
        key = handle.read().strip()
    assert (os.stat(os.path.join(data_dir, "account.key")).st_mode & 0o777) == 0o600
    assert endpoint.startswith("https://" if tls else "http://"), endpoint
    yield {"endpoint": endpoint, "account": "sdkacct", "key": key, "data_dir": data_dir, "tls": tls, "ca_cert": certificate}
    process.terminate()
    try:
        # SIGTERM is a graceful shutdown: the server stops and exits 0.
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
        if tls:
            if previous_bundle is None:
                os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = previous_bundle
            shutil.rmtree(tls_dir, ignore_errors=True)
