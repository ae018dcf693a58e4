"""The status page in headless Chromium, driven over the DevTools protocol.

Starts three `backstop-sim` simulators and `backstop serve` with client and admin keys, sends
some traffic, opens /status in Chromium with the browser's own credentials (HTTP Basic, the key
as the password), and checks that the page renders every provider, and that a breaker tripped
through the admin API turns visibly open on the page that is already open (no reload), within
a few refreshes.

Usage: python3 tests/browser/status_page.py [--bin-dir target/debug] [--screenshot docs/status.png]

Standard library only (a minimal WebSocket client for the DevTools protocol): runs offline.
Every socket is on 127.0.0.1.
"""

import argparse
import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

CLIENT_KEY = "status-client-key"
ADMIN_KEY = "status-admin-key"
PROVIDERS = ["openai", "anthropic", "groq"]
# How long the page may take to show a change: it refreshes every 2 s.
SHOW_WITHIN_S = 8.0


class WebSocket:
    """Just enough of RFC 6455 for a DevTools session: text frames, ping, close."""

    def __init__(self, url):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if not m:
            raise ValueError(f"not a ws:// URL: {url}")
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"WebSocket handshake refused: {head[:200]!r}")

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()


class DevTools:
    """One page of a browser, over a flattened DevTools session."""

    def __init__(self, ws_url):
        self.ws = WebSocket(ws_url)
        self.next_id = 0
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]

    def call(self, method, params=None, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and getattr(self, "session", None):
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def js(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")


def start(cmd, pattern, env=None, what=""):
    """Starts `cmd`; returns (process, the first stdout match of `pattern`)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return p, m.group(1)
    p.kill()
    raise RuntimeError(f"{what or cmd[0]} did not start: {p.stderr.read()}")


def http(method, url, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("authorization", f"Bearer {key}")
    if data:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def page_rows(dt):
    return dt.js(
        "Array.from(document.querySelectorAll('tr[data-provider]')).map(r => {"
        " const b = r.querySelector('.state');"
        " return {name: r.dataset.provider, state: r.dataset.state, label: b.textContent,"
        " color: getComputedStyle(b).color, visible: b.getBoundingClientRect().height > 0}; })"
    )


def wait_for(what, cond, limit):
    deadline = time.time() + limit
    while True:
        value = cond()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="target/debug")
    ap.add_argument("--screenshot", help="write a PNG of the page here")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="backstop-status-")
    procs = []
    stop = threading.Event()
    try:
        sims = []
        # A healthy primary with a few 503s, a slower second, a fast third.
        for extra in (["--latency-ms", "60", "--fail", "503=0.1", "--seed", "7"],
                      ["--latency-ms", "140"], ["--latency-ms", "30"]):
            p, url = start([f"{args.bin_dir}/backstop-sim", "--no-record", *extra],
                           r"listening on (\S+)", what="backstop-sim")
            procs.append(p)
            sims.append(url)
        config = f"""
[server]
client_keys_env = "STATUS_CLIENT_KEYS"
admin_key_env = "STATUS_ADMIN_KEY"

[providers.openai]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "SIM_KEY"
base_url = "{sims[0]}/v1"
# Failure-rate mode: its 10% of 503s fail over without opening the breaker.
breaker = {{ failure_rate = 0.5, minimum_calls = 20, recovery_timeout = "60s" }}

[providers.anthropic]
kind = "anthropic"
model = "claude-3-5-haiku-latest"
api_key_env = "SIM_KEY"
base_url = "{sims[1]}"
breaker = {{ failure_threshold = 5, recovery_timeout = "60s" }}

[providers.groq]
kind = "groq"
model = "llama-3.1-8b-instant"
api_key_env = "SIM_KEY"
base_url = "{sims[2]}"
breaker = {{ failure_threshold = 5, recovery_timeout = "60s" }}

[chains.default]
providers = ["openai", "anthropic", "groq"]

[chains.fast]
strategy = "weighted"
providers = [{{ name = "groq", weight = 0.8 }}, {{ name = "openai", weight = 0.2 }}]
"""
        path = os.path.join(tmp, "backstop.toml")
        with open(path, "w") as f:
            f.write(config)
        env = dict(os.environ, STATUS_CLIENT_KEYS=CLIENT_KEY, STATUS_ADMIN_KEY=ADMIN_KEY,
                   SIM_KEY="sim", RUST_LOG="warn")
        gw, base = start([f"{args.bin_dir}/backstop", "serve", "--config", path,
                          "--listen", "127.0.0.1:0"], r"listening on (\S+)", env=env,
                         what="backstop serve")
        procs.append(gw)

        # Traffic in the background for the whole test: rates, latencies, failovers.

        def traffic():
            i = 0
            while not stop.is_set():
                model = "default" if i % 3 else "fast"
                try:
                    http("POST", f"{base}/v1/chat/completions", CLIENT_KEY,
                         {"model": model, "messages": [{"role": "user", "content": f"q{i}"}]})
                except OSError:
                    return  # the gateway is stopping
                i += 1
                time.sleep(0.1)

        workers = [threading.Thread(target=traffic, daemon=True) for _ in range(3)]
        for w in workers:
            w.start()

        browser = subprocess.Popen(
            [args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", "--window-size=1280,860",
             "--force-device-scale-factor=1", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--user-data-dir={tmp}/chromium", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(browser)
        ws_url = None
        deadline = time.time() + 60
        while time.time() < deadline and ws_url is None:
            line = browser.stderr.readline()
            if not line:
                break
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
        if not ws_url:
            raise RuntimeError("chromium did not start its DevTools endpoint")
        # Keep draining chromium's stderr so it never blocks on a full pipe.
        threading.Thread(target=browser.stderr.read, daemon=True).start()

        dt = DevTools(ws_url)
        dt.call("Network.enable")
        # What a browser sends after the user answers the Basic prompt with a client key.
        basic = base64.b64encode(f"on-call:{CLIENT_KEY}".encode()).decode()
        dt.call("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {basic}"}})
        dt.call("Page.enable")
        dt.call("Page.navigate", {"url": f"{base}/status"})
        wait_for("the page to load its data", lambda: dt.js("!!document.body && document.body.dataset.loaded") == "true", 20)

        rows = page_rows(dt)
        names = sorted(r["name"] for r in rows)
        assert names == sorted(PROVIDERS), f"providers on the page: {names}"
        for r in rows:
            assert r["state"] == "closed" and r["label"] == "closed" and r["visible"], r
        chains = dt.js("Array.from(document.querySelectorAll('[data-chain]')).map(c => c.dataset.chain)")
        assert sorted(chains) == ["default", "fast"], chains
        title = dt.js("document.title")
        assert title == "backstop status", title
        print("ok   the page renders every provider and chain, breakers closed")

        status, body = http("POST", f"{base}/v1/breakers/anthropic/trip", ADMIN_KEY)
        assert status == 200, (status, body)
        tripped = time.time()

        def anthropic_open():
            row = next(r for r in page_rows(dt) if r["name"] == "anthropic")
            return row if row["state"] == "open" else None

        row = wait_for("the tripped breaker to show open", anthropic_open, SHOW_WITHIN_S)
        assert row["label"] == "open" and row["visible"], row
        # Red, not the closed green: the change is visible, not only in an attribute.
        rgb = [int(x) for x in re.findall(r"\d+", row["color"])[:3]]
        assert rgb[0] > 200 and rgb[1] < 120, f"open badge colour {row['color']}"
        countdown = dt.js(
            "document.querySelector('tr[data-provider=\"anthropic\"] .countdown').textContent")
        assert countdown.startswith("half-open in "), countdown
        others = [r for r in page_rows(dt) if r["name"] != "anthropic"]
        assert all(r["state"] == "closed" for r in others), others
        summary = dt.js("document.getElementById('summary').textContent")
        assert summary == "1 open breaker", summary
        print(f"ok   a breaker tripped through the admin API shows open on the open page "
              f"(after {time.time() - tripped:.1f} s)")

        if args.screenshot:
            # A failover or two on screen, with rates settled.
            wait_for("a failover in the list",
                     lambda: dt.js("document.querySelectorAll('#failovers .route').length") > 0, 20)
            time.sleep(2.5)
            shot = dt.call("Page.captureScreenshot", {"format": "png"})
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            print(f"screenshot: {args.screenshot}")
        stop.set()
        for w in workers:
            w.join(timeout=30)
    finally:
        stop.set()
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print("status page: OK")


if __name__ == "__main__":
    sys.exit(main())
