"""Browser latency: from a filter change on the Overview to the updated chart, in headless chromium.

    python -m bench.latency --reports 5000000 --changes 15

Starts the app as bench/load.py does (loopback, local mode, OSE_DATASET = a synthetic dataset) and
opens the Overview in Debian's chromium (never a downloaded browser) through Playwright. Each change
adds or removes one value of the sidebar's Shift filter with a single click (an option in the open
list, or a chip's remove button), cycling Night, +Early, -Night, -Early. The cycle has four states,
so after the first round the server's query cache answers; each change is marked cold (a filter state
first met) or warm, and both medians are reported.

Everything is timed in the page's own clock (performance.now()), by hooks installed before the app
loads: the click that commits the change (the last click before the websocket send), the BackMsg
send, the ForwardMsg `script_finished` (the websocket frames are parsed just far enough to find that
field), and a MutationObserver on the charts' SVG and on the Reports metric. A change is done when the
Reports metric shows a new value, Streamlit's status widget is gone, and no chart has changed for
0.5 s. Reported per change:

- chart_ms: click to the last redraw of the first chart (Reports per month), the headline figure;
- metric_ms: click to the new Reports value; all_charts_ms: click to the last redraw of any chart;
- send_ms (click to BackMsg), server_ms (BackMsg to script_finished: the rerun and its transfer) and
  draw_ms (script_finished to that last chart redraw; negative when the chart was drawn first).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from bench.load import dataset, serve
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # Debian's chromium and its flags, as the browser tests use

SHIFT = "Shift"
# (value, add?) steps; from no Shift filter the cycle returns to no Shift filter.
STEPS = (("Night", True), ("Early", True), ("Night", False), ("Early", False))

# Installed before any page script: hooks on the websocket and on input events.
HOOKS = r"""
(() => {
  const log = window.__ose = {sends: [], finished: [], clicks: [], mutations: []};
  const status = (bytes) => {  // the top-level field 6 (script_finished) of a ForwardMsg, if present
    let i = 0;
    const varint = () => { let v = 0, s = 0, b; do { b = bytes[i++]; v += (b & 127) * 2 ** s; s += 7; } while (b & 128);
                           return v; };
    while (i < bytes.length) {
      const tag = varint(), field = Math.floor(tag / 8), wire = tag & 7;
      if (wire === 0) { const v = varint(); if (field === 6) return v; }
      else if (wire === 2) { const n = varint(); i += n; }  // (not `i += varint()`: i is read first)
      else if (wire === 1) { i += 8; } else if (wire === 5) { i += 4; } else { return null; }
    }
    return null;
  };
  const NativeWebSocket = window.WebSocket;
  const send = NativeWebSocket.prototype.send;
  NativeWebSocket.prototype.send = function (data) { log.sends.push(performance.now()); return send.call(this, data); };
  window.WebSocket = function (...args) {
    const ws = new NativeWebSocket(...args);
    ws.addEventListener('message', (event) => {
      const t = performance.now();
      const read = (buf) => { const s = status(new Uint8Array(buf)); if (s !== null) log.finished.push([t, s]); };
      if (event.data instanceof ArrayBuffer) read(event.data);
      else if (event.data instanceof Blob) event.data.arrayBuffer().then(read);
    });
    return ws;
  };
  window.WebSocket.prototype = NativeWebSocket.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  document.addEventListener('click', (e) => log.clicks.push(e.timeStamp), true);
})();
"""

# Installed once the Overview is drawn: which chart (by order on the page) or metric changed, and when.
OBSERVER = r"""
() => {
  const log = window.__ose;
  if (log.observer) log.observer.disconnect();
  log.observer = new MutationObserver((records) => {
    const t = performance.now();
    for (const r of records) {
      const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (!node) continue;
      const chart = node.closest('[data-testid="stVegaLiteChart"]');
      if (chart && node.closest('svg')) {
        const charts = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stVegaLiteChart"]')];
        log.mutations.push([t, 'chart', charts.indexOf(chart)]);
      } else if (node.closest('[data-testid="stMetricValue"]')) {
        log.mutations.push([t, 'metric', 0]);
      }
    }
  });
  log.observer.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}
"""


def _reports_metric(page: Page) -> str:
    metric = page.locator('[data-testid="stMain"] [data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text="Reports")).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text(timeout=60_000).strip()


def _running(page: Page) -> bool:
    return page.locator('[data-testid="stStatusWidget"]').count() > 0


def _wait_drawn(page: Page, timeout_s: float = 300) -> None:
    """Wait until the Overview's first chart is on the page and the script has finished."""
    page.wait_for_selector('[data-testid="stMain"] [data-testid="stVegaLiteChart"] svg', timeout=timeout_s * 1000)
    end = time.time() + timeout_s
    while time.time() < end and _running(page):
        page.wait_for_timeout(100)
    page.wait_for_timeout(1000)


def _act(page: Page, value: str, add: bool) -> None:
    box = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(has_text=SHIFT).first
    if add:
        field = box.locator("input")
        field.click()  # opens the list; the click on the option commits the change
        field.fill(value)  # typing narrows the list (as tests/browser.py does), so the option is found
        option = page.locator('[role="option"]').filter(has_text=value).first
        option.wait_for(timeout=30_000)
        option.click()
    else:
        box.locator(f'button[aria-label="Remove {value}"]').click()


def measure_change(page: Page, value: str, add: bool, quiet_ms: float = 500, timeout_s: float = 120) -> dict:
    """Make one Shift change and return its timings (ms, page clock)."""
    before = _reports_metric(page)
    page.evaluate("() => { const l = window.__ose; l.sends = []; l.finished = []; l.clicks = []; l.mutations = []; }")
    _act(page, value, add)
    end = time.time() + timeout_s
    while True:
        page.wait_for_timeout(100)
        log = page.evaluate("() => { const l = window.__ose; return {sends: l.sends, finished: l.finished, "
                            "clicks: l.clicks, mutations: l.mutations, now: performance.now()}; }")
        charts = [m for m in log["mutations"] if m[1] == "chart"]
        done = (log["sends"] and log["finished"] and charts and not _running(page)
                and log["now"] - charts[-1][0] >= quiet_ms and _reports_metric(page) != before)
        if done:
            break
        if time.time() > end:
            raise TimeoutError(f"no updated chart within {timeout_s} s of choosing {value}")
    if add:
        page.keyboard.press("Escape")  # close the list (after the measurement: it changes nothing)
    send = log["sends"][0]
    click = max((c for c in log["clicks"] if c <= send), default=send)
    finished = next((t for t, s in log["finished"] if t >= send), float("nan"))
    statuses = [s for t, s in log["finished"] if t >= send]
    first_chart = [m[0] for m in charts if m[2] == 0]
    metric = [m[0] for m in log["mutations"] if m[1] == "metric"]
    chart_done = first_chart[-1] if first_chart else charts[-1][0]
    return {"change": f"{'+' if add else '-'}{value}", "before": before, "after": _reports_metric(page),
            "chart_ms": chart_done - click, "metric_ms": (metric[-1] - click) if metric else float("nan"),
            "all_charts_ms": charts[-1][0] - click, "send_ms": send - click, "server_ms": finished - send,
            "draw_ms": chart_done - finished, "reruns": len(log["sends"]),
            "ok": bool(statuses) and all(s == 0 for s in statuses)}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run(reports: int = 5_000_000, changes: int = 15, log: Path | None = None, verbose: bool = True) -> dict:
    """Measure filter change to updated chart on the Overview `changes` times; return the figures."""
    def say(text: str) -> None:
        if verbose:
            print(text, flush=True)

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (never a downloaded browser)")
    folder = dataset(reports)
    rows: list[dict] = []
    with serve(folder, log=log) as (port, _proc), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.add_init_script(HOOKS)
            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
            _wait_drawn(page)
            first_load_s = time.perf_counter() - start
            say(f"Overview drawn in {first_load_s:.1f} s (includes loading {reports:,} reports)")
            page.evaluate(OBSERVER)
            # One unmeasured change first: the browser's first redraw also warms its code paths.
            # A filter state met for the first time is "cold": the server's query cache cannot answer it.
            seen = {()}  # the opening state (no Shift filter) was computed for the first page
            state: set[str] = set()
            for i in range(changes + 1):
                value, add = STEPS[i % len(STEPS)]
                row = measure_change(page, value, add)
                state = state | {value} if add else state - {value}
                row["cold"] = tuple(sorted(state)) not in seen
                seen.add(tuple(sorted(state)))
                if i == 0:
                    continue
                rows.append(row)
                say(f"{row['change']:>7} ({'cold' if row['cold'] else 'warm'}): chart {row['chart_ms']:6.0f} ms "
                    f"(click->send {row['send_ms']:4.0f}, "
                    f"server {row['server_ms']:6.0f}, draw {row['draw_ms']:+5.0f}); metric {row['metric_ms']:6.0f} ms;"
                    f" all charts {row['all_charts_ms']:6.0f} ms; Reports {row['before']} -> {row['after']}")
        finally:
            browser.close()
    figures: dict = {"reports": reports, "changes": len(rows), "first_load_s": first_load_s,
                     "errors": sum(not r["ok"] for r in rows)}
    for name in ("chart_ms", "metric_ms", "all_charts_ms", "send_ms", "server_ms", "draw_ms"):
        values = [r[name] for r in rows]
        figures[name.replace("_ms", "_p50_ms")] = _median(values)
        figures[name.replace("_ms", "_p95_ms")] = _p95(values)
    for temperature, cold in (("cold", True), ("warm", False)):
        figures[f"chart_p50_{temperature}_ms"] = _median([r["chart_ms"] for r in rows if r["cold"] is cold])
        figures[f"changes_{temperature}"] = sum(r["cold"] is cold for r in rows)
    figures["pass"] = bool(figures["chart_p50_ms"] <= 500 and figures["errors"] == 0)
    figures["rows"] = rows
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the measurement, print the figures and a LATENCY line; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=5_000_000)
    parser.add_argument("--changes", type=int, default=15)
    parser.add_argument("--log", type=Path, help="write the server's output here")
    args = parser.parse_args(argv)
    f = run(args.reports, args.changes, args.log)
    print()
    print("| measure (ms, page clock) | p50 | p95 |\n|---|---|---|")
    for name, label in (("chart", "click to updated first chart"), ("metric", "click to new Reports value"),
                        ("all_charts", "click to last chart redrawn"), ("send", "click to websocket send"),
                        ("server", "send to script_finished (server rerun)"),
                        ("draw", "script_finished to first chart redrawn")):
        print(f"| {label} | {f[f'{name}_p50_ms']:.0f} | {f[f'{name}_p95_ms']:.0f} |")
    print(f"\nLATENCY reports={f['reports']} changes={f['changes']} chart_p50_ms={f['chart_p50_ms']:.0f} "
          f"chart_p95_ms={f['chart_p95_ms']:.0f} server_p50_ms={f['server_p50_ms']:.0f} "
          f"draw_p50_ms={f['draw_p50_ms']:.0f} chart_p50_cold_ms={f['chart_p50_cold_ms']:.0f} "
          f"(n={f['changes_cold']}) chart_p50_warm_ms={f['chart_p50_warm_ms']:.0f} (n={f['changes_warm']}) "
          f"errors={f['errors']} pass={f['pass']}")
    return 0 if f["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
