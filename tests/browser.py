"""Run the real app on a loopback port and drive it with Debian's chromium (never a downloaded one), or speak
Streamlit's websocket protocol to it directly."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
NGINX = "/usr/sbin/nginx"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(env: dict[str, str] | None = None, address: str = "127.0.0.1") -> Iterator[str]:
    """Start `streamlit run app.py` (listening on `address`) and yield its loopback URL; stop it afterwards."""
    port = _free_port()
    log_path = ROOT / f".pytest-streamlit-{port}.log"  # one per app: tests run in parallel
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", address, "--server.port", str(port),
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/_stcore/health", proc, "the app", log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_for(url: str, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start; see {log}") from None
            time.sleep(0.2)


@contextmanager
def reverse_proxy(upstream: str, folder: Path, arrived_for: str | None = None) -> Iterator[str]:
    """Put Debian's nginx on a loopback port in front of `upstream`, set up as a force's proxy would be.

    It forwards the websocket and, as every reverse proxy does, says who the client was
    (X-Forwarded-For, X-Real-IP) on each request, the websocket's upgrade request included.
    arrived_for: an X-Forwarded-For every request is taken to have arrived with (a client's claim, or an outer
    proxy's), before nginx appends its own peer. (The browser cannot say it: Chromium 150 leaves a page's extra
    headers off the websocket's upgrade request, the request the app reads.)
    Yields the proxy's URL; stops nginx afterwards.
    """
    if not Path(NGINX).exists():
        raise RuntimeError(f"{NGINX} is missing: apt-get install nginx")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    temp = "\n".join(f"  {kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                        "uwsgi", "scgi"))
    forwarded = f'"{arrived_for}, $remote_addr"' if arrived_for else "$proxy_add_x_forwarded_for"
    conf = folder / "nginx.conf"
    conf.write_text(f"""{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 256; }}
http {{
{temp}
  access_log {folder}/access.log;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass {upstream};
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_read_timeout 300s;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For {forwarded};
      proxy_set_header X-Real-IP $remote_addr;
    }}
  }}
}}
""")
    log = folder / "nginx.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_for(f"http://127.0.0.1:{port}/_stcore/health", proc, "nginx", log)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(proc)


@contextmanager
def browser_page() -> Iterator[Page]:
    """Yield a page in headless Debian chromium."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (never a downloaded browser)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def settle(page: Page, timeout_s: float = 60) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_timeout(300)
    end = time.time() + timeout_s
    while time.time() < end and page.locator('[data-testid="stStatusWidget"]').count():
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)


def metric_value(page: Page, label: str) -> str:
    """Return the displayed value of the st.metric with this label."""
    metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option in the sidebar multiselect with this label."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).first
    field = box.locator("input")
    field.click()
    field.fill(option)  # typing narrows the list, so the option is found even on a slow machine
    page.locator('[role="option"]').filter(has_text=option).first.click(timeout=60_000)
    page.keyboard.press("Escape")


def script_run(url: str, name: str, timeout_s: float = 120) -> list:
    """Open the app's websocket as a page named `name` would, run the script once, return the elements drawn.

    The TCP connection goes to the app on loopback, but Host and Origin carry `name` and the app's port: what
    a web page at http://NAME:PORT sends once NAME resolves to 127.0.0.1 (DNS rebinding).
    """
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    port = urlsplit(url).port
    elements = []
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    with connect(f"ws://{name}:{port}/_stcore/stream", sock=sock, origin=f"http://{name}:{port}",
                 subprotocols=["streamlit"], open_timeout=timeout_s) as ws:
        back = BackMsg()
        back.rerun_script.query_string = ""  # what the browser sends on connecting: run the script
        ws.send(back.SerializeToString())
        end = time.time() + timeout_s
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(ws.recv(timeout=max(end - time.time(), 0.1)))
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                elements.append(msg.delta.new_element)
            elif kind == "script_finished":
                return elements
