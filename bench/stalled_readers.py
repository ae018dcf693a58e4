#!/usr/bin/env python3
"""Memory held by stalled stream readers (issue 16, item 5).

Opens N streamed chat requests on sockets with a 4 KiB receive buffer, reads until each
answer has started, then stops reading; after the gateway has filled every buffer it may,
prints the gateway's VmRSS. Loopback only; bounded in count and time.

Usage: stalled_readers.py GATEWAY_PID HOST:PORT [N]
"""

import json
import socket
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def open_stalled(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((host, int(port)))
    body = json.dumps({"model": "default", "stream": True,
                       "messages": [{"role": "user", "content": "stall"}]}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
              b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
    seen = b""
    while b"Simulated answer" not in seen:
        piece = s.recv(512)
        if not piece:
            raise RuntimeError("closed before the answer started")
        seen += piece
    return s


def main():
    pid, addr = int(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    before = rss_kb(pid)
    held = [open_stalled(addr) for _ in range(n)]
    # Let the gateway fill what it buffers; sample until RSS stops growing (at most 20 s).
    last, stable, deadline = -1, 0, time.time() + 20
    while time.time() < deadline and stable < 3:
        time.sleep(1)
        now = rss_kb(pid)
        stable = stable + 1 if abs(now - last) < 256 else 0
        last = now
    print(f"{n} stalled streams: VmRSS {before} kB before, {last} kB after "
          f"(+{(last - before) / 1024:.1f} MiB, {(last - before) / n:.0f} kB per stream)")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
