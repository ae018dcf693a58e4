#!/usr/bin/env python3
"""Hold N concurrent streaming chat completions open against a server on 127.0.0.1 and sample
a process's memory while they are open. Used by bench/gateway.sh for (e).

Each stream is a raw HTTP/1.1 POST with "stream":true on its own connection; it counts as
open once the status line is 200 and the first SSE `data:` event has arrived. The streams keep
being drained (so the server is not blocked by back-pressure) while VmRSS of --pid is sampled,
then every connection is closed. Everything is bounded by --timeout.

Prints one JSON object on stdout.
"""

import argparse
import asyncio
import json
import resource
import sys
import time


def vm(pid, field):
    """VmRSS / VmHWM of pid in kB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Stream:
    def __init__(self):
        self.reader = None
        self.writer = None
        self.open = False
        self.closed_early = False
        self.error = None
        self.bytes = 0


async def open_stream(s, host, port, request, gate, open_timeout):
    async with gate:
        try:
            s.reader, s.writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), open_timeout)
            s.writer.write(request)
            await s.writer.drain()
            buf = b""
            deadline = time.monotonic() + open_timeout
            while b"\r\n\r\n" not in buf or b"data:" not in buf.split(b"\r\n\r\n", 1)[1]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no first event in time")
                chunk = await asyncio.wait_for(s.reader.read(65536), left)
                if not chunk:
                    # Say what the server answered, if anything (a gateway at its connection
                    # cap answers 503 and closes).
                    status = buf.split(b"\r\n", 1)[0].decode("latin-1") if buf else ""
                    raise ConnectionError("closed before the first event"
                                          + (f" ({status})" if status else ""))
                buf += chunk
            status = buf.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                raise ConnectionError(f"status line {status!r}")
            s.bytes = len(buf)
            s.open = True
        except Exception as e:  # noqa: BLE001 - reported, not raised
            s.error = f"{type(e).__name__}: {e}"


async def drain(s):
    try:
        while True:
            chunk = await s.reader.read(65536)
            if not chunk:
                s.closed_early = True
                return
            s.bytes += len(chunk)
    except (asyncio.CancelledError, Exception):  # noqa: BLE001
        return


async def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--model", default="slow")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--pid", type=int, required=True, help="process whose RSS is sampled")
    p.add_argument("--hold", type=float, default=5.0, help="seconds to hold all streams open")
    p.add_argument("--open-timeout", type=float, default=30.0)
    p.add_argument("--parallel-opens", type=int, default=100)
    p.add_argument("--timeout", type=float, default=90.0, help="bound on the whole run")
    a = p.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("streams.py: loopback only")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, a.count * 2 + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    body = json.dumps({
        "model": a.model,
        "stream": True,
        "messages": [{"role": "user", "content": "Stream a long answer, slowly."}],
    }).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer bench\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    result = {"count": a.count, "rss_kb_before": vm(a.pid, "VmRSS")}
    streams = [Stream() for _ in range(a.count)]
    gate = asyncio.Semaphore(a.parallel_opens)
    t0 = time.monotonic()
    drains = []
    try:
        await asyncio.wait_for(
            asyncio.gather(*(open_stream(s, a.host, a.port, request, gate, a.open_timeout)
                             for s in streams)),
            a.timeout)
    except asyncio.TimeoutError:
        result["timed_out_opening"] = True
    result["open_seconds"] = round(time.monotonic() - t0, 2)
    opened = [s for s in streams if s.open]
    result["opened"] = len(opened)
    errors = {}
    for s in streams:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    result["errors"] = dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5])

    drains = [asyncio.ensure_future(drain(s)) for s in opened]
    samples = []
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        r = vm(a.pid, "VmRSS")
        if r is not None:
            samples.append(r)
        await asyncio.sleep(0.25)
    result["still_open"] = sum(1 for s in opened if not s.closed_early)
    result["rss_kb_max"] = max(samples) if samples else None
    result["rss_kb_samples"] = len(samples)
    result["hwm_kb"] = vm(a.pid, "VmHWM")
    result["bytes_received"] = sum(s.bytes for s in streams)

    for d in drains:
        d.cancel()
    await asyncio.gather(*drains, return_exceptions=True)
    for s in streams:
        if s.writer is not None:
            s.writer.close()
    await asyncio.sleep(0.5)
    result["rss_kb_after_close"] = vm(a.pid, "VmRSS")
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
