#!/usr/bin/env python3
"""Turn bench/gateway.sh's raw results into the markdown table, and write it into
BENCHMARKS.md between <!-- load:begin --> and <!-- load:end --> (the rest of the file is kept;
the section is appended when the markers are missing; the file is created when missing).

Inputs:
  --results FILE  tab-separated: section label run rps p50_us p99_us requests errors
  --meta FILE     KEY=VALUE lines (machine, settings, memory, checks)
  --output FILE   BENCHMARKS.md to update; omit to only print
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

BEGIN = "<!-- load:begin -->"
END = "<!-- load:end -->"

# Targets from issue 14 (ratios and differences against nginx, in the same run); failover,
# breaker and memory targets from issue 5.
T_RATIO = {"ns": 0.95, "st": 0.90}
T_OVER_NGINX_P50_US = 100.0
T_OVER_NGINX_P99_US = 300.0
T_BREAKER_US = 50.0
T_FAILOVER_US = 1000.0
T_IDLE_MB = 15.0  # issue 14
T_STREAMS_MB = 100.0


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                meta[k] = v
    return meta


def read_results(path):
    runs = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 8:
                continue
            section, label, _run, rps, p50, p99, requests, errors = parts
            runs.setdefault((section, label), []).append(
                (float(rps), float(p50), float(p99), int(requests), int(errors)))
    med = {}
    for key, rs in runs.items():
        med[key] = {
            "rps": statistics.median(r[0] for r in rs),
            "p50": statistics.median(r[1] for r in rs),
            "p99": statistics.median(r[2] for r in rs),
            "rps_min": min(r[0] for r in rs),
            "rps_max": max(r[0] for r in rs),
            "requests": sum(r[3] for r in rs),
            "errors": sum(r[4] for r in rs),
            "n": len(rs),
        }
    return med


def ms(us):
    return "n/a" if us is None else f"{us / 1000:.3f} ms"


def add_ms(us):
    return "n/a" if us is None else f"{us / 1000:+.3f} ms"


def add_us(us):
    return "n/a" if us is None else f"{us:+.0f} µs"


def mb(kb):
    try:
        return f"{int(kb) / 1024:.1f} MB"
    except (TypeError, ValueError):
        return "n/a"


def fmt_ratio(r):
    """Two decimals, or two significant digits below 0.1 (Portkey, LiteLLM: 0.014, 0.0015)."""
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def mark(ok):
    return "✅" if ok else "❌"


def render(med, meta):
    out = []
    w = out.append
    conns = meta.get("CONNECTIONS", "?")
    w(f"## Gateway load benchmark (`bench/gateway.sh`)")
    w("")
    w(f"- Date: {meta.get('DATE', '?')}")
    w(f"- Machine: {meta.get('NPROC', '?')} CPUs ({meta.get('CPU', '?')}), "
      f"kernel {meta.get('KERNEL', '?')}")
    w(f"- Load: wrk {meta.get('WRK_VERSION', '?')}, {meta.get('THREADS', '?')} threads, "
      f"{conns} connections, {meta.get('DURATION', '?')} per run after a "
      f"{meta.get('WARMUP', '?')} warm-up; median of {meta.get('REPEAT', '?')} runs "
      f"(targets interleaved); {meta.get('NGINX_VERSION', 'nginx')}; "
      f"{meta.get('BACKSTOP_VERSION', 'backstop')} (release build)")
    w(f"- Simulator: zero latency, `--no-record`, {meta.get('CHUNKS', '?')} content chunks per "
      f"reply (non-streaming replies carry the same text in one body)")
    peers = meta.get("PEERS", "").split()
    if "portkey" in peers:
        w(f"- Portkey gateway {meta.get('PORTKEY_VERSION', '?')} (npm `@portkey-ai/gateway`, "
          f"Node {meta.get('NODE_VERSION', '?')}, `--headless`, bound to 127.0.0.1): fallback "
          f"config in the `x-portkey-config` header, two targets `provider: openai` with "
          f"`custom_host` = the simulator's `/v1`")
    if "litellm" in peers:
        w(f"- LiteLLM proxy {meta.get('LITELLM_VERSION', '?')} (pip `litellm[proxy]`, one uvicorn "
          f"worker, its default; access log off): model `bench` with fallback `bench-fallback`, "
          f"both `openai/` on the simulator's `/v1`; master key, no database, "
          f"`LITELLM_LOCAL_MODEL_COST_MAP=True`")
    if meta.get("QUICK") == "1":
        w("- **Quick run** (`--quick`): short runs, numbers are indicative only.")
    if meta.get("NOTE"):
        w(f"- Note: {meta['NOTE']}")
    w("")

    w("### Throughput and latency")
    w("")
    w("| Mode | Path | req/s | ÷ nginx | p50 | p99 | errors |")
    w("|---|---|---:|---:|---:|---:|---:|")
    names = {"direct": "(a) simulator directly", "gateway": "(b) backstop → simulator",
             "nginx": "(c) nginx → simulator", "portkey": "Portkey gateway → simulator",
             "litellm": "LiteLLM proxy → simulator"}
    skipped = []
    for sec, mode in (("ns", "non-streaming"), ("st", "streaming")):
        for label in ("direct", "gateway", "nginx", *peers):
            m = med.get((sec, label))
            if not m:
                why = meta.get(f"SKIP_{label}_{sec}") or meta.get(f"SKIP_{label}")
                if label in peers:
                    w(f"| {mode} | {names.get(label, label)} | — | — | — | — | "
                      f"not measured¹ |")
                    skipped.append(f"{names.get(label, label)}, {mode}: "
                                   f"{why or 'not measured (no result)'}")
                continue
            n = med.get((sec, "nginx"))
            ratio = fmt_ratio(m["rps"] / n["rps"]) if n and n["rps"] else "n/a"
            w(f"| {mode} | {names[label]} | {m['rps']:,.0f} | {ratio} | {ms(m['p50'])} | "
              f"{ms(m['p99'])} | {m['errors']} |")
    if skipped:
        w("")
        w("¹ " + "; ".join(s.replace("|", "\\|") for s in skipped) + ".")
    heads = []
    for sec, mode in (("ns", "non-streaming"), ("st", "streaming")):
        d, g, n = med.get((sec, "direct")), med.get((sec, "gateway")), med.get((sec, "nginx"))
        if d and g and n:
            heads.append((mode, d["rps"] / max(g["rps"], n["rps"], 1.0)))
    if heads:
        w("")
        w("Simulator alone vs the faster proxied path: "
          + ", ".join(f"{m} {h:.1f}×" for m, h in heads) + "."
          + (" Close to 1×: the simulator (or CPU shared with it) may be what limits the "
             "proxied paths; rerun on a machine with more cores."
             if min(h for _, h in heads) < 1.25 else " The simulator is not the bottleneck."))
    w("")

    w("### Gateway against the targets")
    w("")
    w("| Mode | backstop / nginx req/s (≥ 0.95 / 0.90) | p50 over nginx's (≤ +0.1 ms) | "
      "p99 over nginx's (≤ +0.3 ms) | added p50 / p99 over direct: backstop | nginx |")
    w("|---|---:|---:|---:|---:|---:|")
    for sec, mode in (("ns", "non-streaming"), ("st", "streaming")):
        d, g, n = med.get((sec, "direct")), med.get((sec, "gateway")), med.get((sec, "nginx"))
        if not (d and g and n):
            continue
        ratio = g["rps"] / n["rps"] if n["rps"] else 0.0
        o50, o99 = g["p50"] - n["p50"], g["p99"] - n["p99"]
        w(f"| {mode} | {ratio:.2f} {mark(ratio >= T_RATIO[sec])} | {add_ms(o50)} "
          f"{mark(o50 <= T_OVER_NGINX_P50_US)} | {add_ms(o99)} "
          f"{mark(o99 <= T_OVER_NGINX_P99_US)} | "
          f"{add_ms(g['p50'] - d['p50'])} / {add_ms(g['p99'] - d['p99'])} | "
          f"{add_ms(n['p50'] - d['p50'])} / {add_ms(n['p99'] - d['p99'])} |")
    w("")

    rates = [r for r in meta.get("RATES", "").split() if med.get((f"r{r}", "direct"))]
    if rates:
        w("### Fixed rate (paced, non-streaming)")
        w("")
        w(f"Each wrk connection pauses {meta.get('PACE_MS', '?')} ms before each request "
          "(wrk's `delay()`: closed-loop pacing, 1 ms resolution, no coordinated-omission "
          "correction), with the connection count chosen for the rate; the achieved rate is "
          "shown. Added latency is over the simulator called directly at the same rate.")
        w("")
        w("| Target rate | Path | achieved req/s | p50 | p99 | added p50 | added p99 | "
          "added p99 ÷ nginx's |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|")
        for r in rates:
            d, n = med.get((f"r{r}", "direct")), med.get((f"r{r}", "nginx"))
            for label in ("direct", "gateway", "nginx"):
                m = med.get((f"r{r}", label))
                if not m:
                    continue
                if label == "direct":
                    a50 = a99 = rel = "—"
                else:
                    a50, a99 = add_ms(m["p50"] - d["p50"]), add_ms(m["p99"] - d["p99"])
                    na99 = n["p99"] - d["p99"] if n else 0.0
                    rel = f"{(m['p99'] - d['p99']) / na99:.2f}" if na99 > 0 else "n/a"
                w(f"| {int(r):,} | {names[label]} | {m['rps']:,.0f} | {ms(m['p50'])} | "
                  f"{ms(m['p99'])} | {a50} | {a99} | {rel} |")
        w("")

    w("### (d) Failover cost (non-streaming, through the gateway)")
    w("")
    w("| Case | req/s | p50 | p99 | added p50 | added p99 | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    h = med.get(("fo", "healthy"))
    rows = (("healthy", "primary healthy (chain `bench`)", None),
            ("refused", "primary refuses connections → secondary (chain `failover`)",
             T_FAILOVER_US),
            ("breaker", "primary's breaker open → secondary (chain `breaker`)", T_BREAKER_US))
    for label, name, target in rows:
        m = med.get(("fo", label))
        if not m:
            continue
        if h and label != "healthy":
            a50, a99 = m["p50"] - h["p50"], m["p99"] - h["p99"]
            c50 = f"{add_us(a50)} {mark(a50 <= target)}"
            c99 = add_us(a99)
        else:
            c50 = c99 = "—"
        w(f"| {name} | {m['rps']:,.0f} | {ms(m['p50'])} | {ms(m['p99'])} | {c50} | {c99} | "
          f"{m['errors']} |")
    w("")
    w(f"Targets: failover ≤ 1 ms added, breaker open ≤ 50 µs added (p50 against the healthy "
      f"primary). Requests that reached the primary's simulator while its breaker was open: "
      f"**{meta.get('TRIPPED_SIM_REQUESTS', '?')}** "
      f"{mark(meta.get('TRIPPED_SIM_REQUESTS') == '0')} (breaker state at the end: "
      f"{meta.get('BREAKER_STATE', '?')}). The refusing primary's breaker stayed "
      f"{meta.get('REFUSED_BREAKER_STATE', '?')}, so every `failover` request paid the refused "
      f"connection; `x-backstop-attempts` on a probe request: "
      f"{meta.get('FAILOVER_ATTEMPTS', '?')}.")
    w("")

    w("### (e) Memory")
    w("")
    w("| Measure | RSS | target |")
    w("|---|---:|---|")
    idle = meta.get("GW_IDLE_KB")
    w(f"| gateway idle, before load (VmRSS) | {mb(idle)} | ≤ 15 MB "
      f"{mark(idle not in (None, '') and int(idle) / 1024 <= T_IDLE_MB)} |")
    w(f"| gateway peak over all load runs above (VmHWM) | {mb(meta.get('GW_HWM_KB'))} | |")
    w(f"| gateway after the load runs (VmRSS) | {mb(meta.get('GW_AFTER_KB'))} | |")
    st = {}
    try:
        st = json.loads(meta.get("STREAMS_JSON") or "{}")
    except json.JSONDecodeError:
        pass
    count = st.get("count", meta.get("STREAMS", "?"))
    w(f"| fresh gateway idle (VmRSS) | {mb(st.get('rss_kb_before'))} | |")
    peak = st.get("rss_kb_max")
    ok = (peak is not None and peak / 1024 <= T_STREAMS_MB
          and st.get("opened") == count and st.get("still_open") == count)
    w(f"| fresh gateway with {count} concurrent open streams (max VmRSS while open) | "
      f"{mb(peak)} | ≤ 100 MB {mark(ok)} |")
    w(f"| same, after the streams closed | {mb(st.get('rss_kb_after_close'))} | |")
    w("")
    w(f"Streams: {st.get('opened', '?')} of {count} opened in {st.get('open_seconds', '?')} s "
      f"(status 200 and a first SSE event), {st.get('still_open', '?')} still open after "
      f"holding them {meta.get('STREAMS_HOLD', '?')} s; slow simulator "
      f"`--chunk-delay-ms 1000 --chunks 30`."
      + (f" Errors: {st['errors']}." if st.get("errors") else ""))
    return "\n".join(out) + "\n"


def update(path, section):
    block = f"{BEGIN}\n{section}{END}\n"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n\n"
    b, e = text.find(BEGIN), text.find(END)
    if b != -1 and e != -1 and e > b:
        after = text[e + len(END):]
        if after.startswith("\n"):
            after = after[1:]
        new = text[:b] + block + after
    else:
        if text and not text.endswith("\n"):
            text += "\n"
        if text and not text.endswith("\n\n"):
            text += "\n"
        new = text + block
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".benchmarks.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--output")
    a = p.parse_args()
    section = render(read_results(a.results), read_meta(a.meta))
    sys.stdout.write(section)
    if a.output:
        update(a.output, section)
        sys.stderr.write(f"wrote the load section of {a.output}\n")


if __name__ == "__main__":
    main()
