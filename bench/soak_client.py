#!/usr/bin/env python3
"""Mixed traffic for bench/soak.sh: N threads, each with one keep-alive connection to the
gateway on 127.0.0.1, sending chat completions (every other one streamed) for --seconds.
Every response is read to its end and classified. Prints one JSON object on stdout."""

import argparse
import http.client
import json
import threading
import time
from collections import Counter


def worker(host, port, deadline, n, tally, lock):
    conn = None
    i = 0
    while time.monotonic() < deadline:
        i += 1
        stream = i % 2 == 0
        body = json.dumps({
            "model": "default",
            "messages": [{"role": "user", "content": f"soak {n}-{i}"}],
            "stream": stream,
        })
        key = None
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request("POST", "/v1/chat/completions", body,
                         {"content-type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                key = f"{r.status}"
            elif stream:
                text = data.decode("utf-8", "replace")
                if text.endswith("data: [DONE]\n\n"):
                    key = "200 stream [DONE]"
                elif '"error"' in text.rsplit("data: ", 1)[-1]:
                    key = "200 stream error event"
                else:
                    key = "200 stream TRUNCATED"
            else:
                key = "200"
            if r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            key = f"transport {type(e).__name__}"
            if conn is not None:
                conn.close()
            conn = None
        with lock:
            tally[key] += 1
    if conn is not None:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    host, port = args.addr.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("soak_client only talks to 127.0.0.1")
    deadline = time.monotonic() + args.seconds
    tally, lock = Counter(), threading.Lock()
    threads = [threading.Thread(target=worker, args=(host, int(port), deadline, n, tally, lock), daemon=True)
               for n in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.seconds + 60)
    print(json.dumps({"requests": sum(tally.values()), "by_outcome": dict(sorted(tally.items()))}))


if __name__ == "__main__":
    main()
