"""A live `bookend serve` for the browser tests, a Shared Key client to give it work, and headless
Chromium (Debian's chromium and chromium-driver) driven by Selenium.

The daemon runs on a free loopback port over a temporary data directory and is stopped with SIGTERM
at the end. Chromium runs headless and, as root, with --no-sandbox; when it cannot start the tests
fail (they never skip): `make ui-test` installs it first.
"""
import base64
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCREENSHOTS = os.path.join(ROOT, "var", "ui-screenshots")
ACCOUNT = "uiacct"
API_VERSION = "2025-06-01"


@pytest.fixture(scope="session")
def daemon():
    binary = os.environ.get("BOOKEND_BIN") or os.path.join(ROOT, ".build", "debug", "bookend")
    data_dir = tempfile.mkdtemp(prefix="bookend-ui-")
    process = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0", "--account", ACCOUNT],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    endpoint, dashboard, lines = None, None, []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Endpoint:"):
            endpoint = line.split(":", 1)[1].strip()
        if line.startswith("Dashboard:"):
            dashboard = line.split(":", 1)[1].strip().split(" ")[0]
            break
    if endpoint is None or dashboard is None:
        process.kill()
        raise RuntimeError("bookend serve did not start (or printed no Dashboard line):\n" + "".join(lines))
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    key_file = os.path.join(data_dir, "account.key")
    with open(key_file) as handle:
        key = handle.read().strip()
    yield {"endpoint": endpoint, "dashboard": dashboard, "key": key, "key_file": key_file, "binary": binary, "data_dir": data_dir}
    process.terminate()
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


class Batch:
    """The few Batch REST calls the tests need, signed with Shared Key as the SDKs sign them."""

    SIGNED = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
              "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"]

    def __init__(self, endpoint, key):
        self.endpoint = endpoint
        self.key = base64.b64decode(key)

    def call(self, method, path, body=None, expect=(200, 201, 202, 204)):
        query = {"api-version": API_VERSION}
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"ocp-date": email.utils.formatdate(usegmt=True)}
        if body is not None:
            headers["Content-Type"] = "application/json; odata=minimalmetadata"
            headers["Content-Length"] = str(len(data))
        text = method + "\n" + "\n".join(headers.get(name, "") for name in self.SIGNED) + "\n"
        text += "".join(f"{name}:{value}\n" for name, value in sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("ocp-")))
        text += f"/{ACCOUNT}{path}" + "".join(f"\n{name}:{query[name]}" for name in sorted(query))
        signature = base64.b64encode(hmac.new(self.key, text.encode(), hashlib.sha256).digest()).decode()
        headers["Authorization"] = f"SharedKey {ACCOUNT}:{signature}"
        request = urllib.request.Request(
            self.endpoint + path + "?" + urllib.parse.urlencode(query), data=data if body is not None else None,
            headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        assert status in expect, f"{method} {path}: HTTP {status} {payload[:500]!r}"
        return json.loads(payload) if payload else None

    def wait(self, what, predicate, timeout=120):
        """Polls a GET until `predicate` holds on its answer (never a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.call("GET", what)
            if predicate(answer):
                return answer
            assert time.monotonic() < deadline, f"timed out waiting on {what}: {json.dumps(answer)[:800]}"
            time.sleep(0.2)


@pytest.fixture(scope="session")
def batch(daemon):
    return Batch(daemon["endpoint"], daemon["key"])


def make_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # No driver or browser download, ever: Debian's chromium and chromedriver are used as installed.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1360,1000",
                     "--force-prefers-reduced-motion", "--lang=en-GB"]:
        options.add_argument(argument)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser():
    driver = make_browser()
    yield driver
    driver.quit()


@pytest.fixture
def fresh_browser():
    driver = make_browser()
    yield driver
    driver.quit()


def screenshot(driver, name):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    # The whole page, not just the window: set the window to the document's height first.
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(max(height + 140, 700), 4000))
    driver.save_screenshot(os.path.join(SCREENSHOTS, name + ".png"))
    driver.set_window_size(width, 1000)


def phone_screenshot(driver, name):
    """The viewport as it is (a phone's, set by the caller through device metrics)."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS, name + ".png"))
