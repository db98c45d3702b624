"""Load test: many concurrent sessions over Streamlit's own websocket, each changing the filters.

    python -m bench.load --reports 5000000 --sessions 30 --changes 10
    python -m bench.load --reports 5000000 --sessions 30 --think 10 --busy-core    # another process on one core
    python -m bench.load --reports 5000000 --sessions 100 --think 10

Starts `streamlit run app.py` on a free loopback port (local mode, OSE_DATASET = a synthetic dataset,
a temporary OSE_DATA_DIR) and drives it the way the browser's frontend does, with no browser:

1. GET /_stcore/health, which sets the `_streamlit_xsrf` cookie (the app ships enableXsrfProtection).
2. Open ws://127.0.0.1:PORT/_stcore/stream with the subprotocols ["streamlit", <xsrf token>] and the
   cookie, as the frontend does (the server reads the token only to trust an auth cookie; local mode
   needs none, but the handshake is the browser's).
3. Send a BackMsg `rerun_script` carrying a ClientState (query string, empty widget states): the
   first run. The server answers with ForwardMsgs: `new_session`, `navigation` (page hashes),
   `delta`s (elements; each widget's proto carries its `id`) and `script_finished`.
4. A filter change is another `rerun_script` whose `widget_states` set one sidebar multiselect
   (`flt_shifts` or `flt_roles`, found by the id suffix in the first run's deltas) to a new
   `string_array_value`, as the multiselect serialises its value. Widgets not sent keep their
   previous values on the server, as with the browser (which sends them all).

Each rerun is timed from sending the BackMsg to the `script_finished` ForwardMsg. An exception
element, an error alert, or a finish other than FINISHED_SUCCESSFULLY counts as an error. The
server's resident memory (the process and its children, from /proc) is sampled every 0.5 s: after a
warm-up session has loaded the data, at the peak of each wave of sessions, and after each wave has
closed (the plateau). A second wave shows whether memory keeps growing with sessions served.

The server's CPU time (user and system, the process and its children, from /proc) is read before and
after each wave: divided by the runs the wave made, it is the cost of a run in CPU seconds, a figure
that other work on the machine does not inflate the way it inflates wall times. With `--busy-core`
a plain Python spin loop in a subprocess keeps one core busy for the duration of each wave (started
before its first session connects, stopped when its last has finished), as another program on the
same server would.

Loopback only; bounded (a few minutes at 30 sessions x 10 changes); the server is stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

from lib.synth.generator import is_written

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / "cache"  # shared with bench/run.py: bench/cache/synth-<n>
# The sidebar filters a session changes (keys in lib/ui/__init__.py: flt_<field>).
FILTER_KEYS = ("flt_shifts", "flt_roles")
RERUN_TIMEOUT_S = 120.0


# --- the dataset and the server -----------------------------------------------------------


def dataset(n: int) -> Path:
    """Generate (once, as bench/run.py does) and return a synthetic dataset folder of n reports."""
    out = CACHE / f"synth-{n}"
    if not is_written(out):
        # A folder left by a run stopped part-way (before writes were atomic) is rebuilt, not read.
        shutil.rmtree(out, ignore_errors=True)
        CACHE.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "lib.synth", "--reports", str(n), "--seed", "1", "--out", str(out)],
                       cwd=ROOT, check=True)
    return out


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(folder: Path, log: Path | None = None, timeout_s: float = 120) -> Iterator[tuple[int, subprocess.Popen]]:
    """Run the app on a free loopback port over `folder` (local mode) and yield (port, process)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ose-bench-") as data_dir:
        env = {k: v for k, v in os.environ.items() if k not in ("OSE_AUTH_CONFIG", "OSE_DEMO")}
        env.update(OSE_DATASET=str(folder), OSE_DATA_DIR=data_dir)
        out = open(log or Path(data_dir) / "streamlit.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
             # As in production: no source watching. (Watching re-imports edited modules mid-run, which here
             # raised PicklingError and KeyError('lib') and could give the engine's cache a second copy.)
             "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + timeout_s
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                    break
                except OSError:
                    if time.time() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"the app did not start on port {port}; see {out.name}") from None
                    time.sleep(0.2)
            yield port, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out.close()


# --- memory -------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user and system) used so far by a process and its children, in seconds."""
    ticks = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            # Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


@contextlib.contextmanager
def busy_core(on: bool = True) -> Iterator[subprocess.Popen | None]:
    """Keep one core busy with a Python spin loop in a subprocess while the block runs (nothing when off)."""
    if not on:
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    """Return the resident memory of a process and its children in MB (VmRSS from /proc)."""
    total_kb = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


class Sampler:
    """Sample a process tree's RSS every `interval` seconds in a background thread."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_mb(self.pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def now(self) -> float:
        """Return the RSS right now (MB)."""
        return rss_mb(self.pid)

    def peak(self, since: float) -> float:
        """Return the highest sample taken since the monotonic time `since` (MB)."""
        return max((mb for t, mb in self.samples if t >= since), default=self.now())

    def plateau(self, seconds: float = 10.0) -> float:
        """Wait `seconds`, then return the median of the samples taken in the last half of the wait (MB)."""
        start = time.monotonic()
        time.sleep(seconds)
        tail = [mb for t, mb in self.samples if t >= start + seconds / 2]
        return statistics.median(tail) if tail else self.now()


# --- one session over the websocket -------------------------------------------------------


@dataclass
class Run:
    """One script run as the client saw it."""

    seconds: float
    status: str
    errors: list[str]
    bytes: int


@dataclass
class Session:
    """A client of the app speaking Streamlit's websocket protocol (BackMsg out, ForwardMsg in)."""

    port: int
    query_string: str = ""
    widgets: dict[str, object] = field(default_factory=dict)  # widget id -> its element proto
    page_script_hash: str = ""
    metrics: dict[str, str] = field(default_factory=dict)  # metric label -> value, from the last run

    async def __aenter__(self) -> Session:
        # As the browser does: the health check sets the XSRF cookie, whose token goes in the subprotocols.
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=30) as resp:
            cookie = SimpleCookie()
            for header in resp.headers.get_all("Set-Cookie") or []:
                cookie.load(header)
        token = cookie["_streamlit_xsrf"].value if "_streamlit_xsrf" in cookie else ""
        headers = {"Cookie": f"_streamlit_xsrf={token}"} if token else {}
        self._ws_cm = connect(f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit", token],
                              additional_headers=headers, origin=f"http://127.0.0.1:{self.port}",
                              max_size=None, open_timeout=60, ping_interval=None)
        self.ws = await self._ws_cm.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws_cm.__aexit__(*exc)

    def widget_id(self, key: str) -> str:
        """Return the id of the widget with this user key (a keyed widget's id ends with the key)."""
        for wid in self.widgets:
            if wid.endswith(f"-{key}"):
                return wid
        raise KeyError(f"no widget with key {key!r} in the last run")

    def options(self, key: str) -> list[str]:
        """Return the options of the multiselect with this key."""
        return list(self.widgets[self.widget_id(key)].options)

    async def rerun(self, changes: dict[str, list[str]] | None = None) -> Run:
        """Ask for a rerun with these multiselects (key -> values) changed; time it to `script_finished`."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self.page_script_hash
        state.context_info.timezone = "Europe/London"
        state.context_info.locale = "en-GB"
        for key, values in (changes or {}).items():
            widget = state.widget_states.widgets.add()
            widget.id = self.widget_id(key)
            widget.string_array_value.data.extend(values)
        errors: list[str] = []
        received = 0
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        while True:
            try:
                data = await asyncio.wait_for(self.ws.recv(), timeout=RERUN_TIMEOUT_S)
            except TimeoutError:
                return Run(time.perf_counter() - start, "TIMEOUT", errors + ["no script_finished"], received)
            received += len(data)
            fwd = ForwardMsg()
            fwd.ParseFromString(data)
            kind = fwd.WhichOneof("type")
            if kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fwd.script_finished)
                if status != "FINISHED_SUCCESSFULLY":
                    errors.append(status)
                return Run(time.perf_counter() - start, status, errors, received)
            if kind == "new_session":
                self.page_script_hash = self.page_script_hash or fwd.new_session.page_script_hash
            elif kind == "navigation":
                self.page_script_hash = fwd.navigation.page_script_hash or self.page_script_hash
            elif kind == "page_not_found":
                errors.append(f"page not found: {fwd.page_not_found.page_name}")
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                self._read_element(fwd.delta.new_element, errors)

    def _read_element(self, element, errors: list[str]) -> None:
        kind = element.WhichOneof("type")
        if kind == "exception":
            errors.append(f"exception: {element.exception.type}: {element.exception.message[:200]}")
        elif kind == "alert" and element.alert.format == Alert.ERROR:
            errors.append(f"error shown: {element.alert.body[:200]}")
        elif kind == "metric":
            self.metrics[element.metric.label] = element.metric.body
        elif kind is not None:
            proto = getattr(element, kind)
            wid = getattr(proto, "id", "") if proto.DESCRIPTOR.fields_by_name.get("id") else ""
            if wid:
                self.widgets[wid] = proto


# --- the load test ------------------------------------------------------------------------


def _change(rng: random.Random, session: Session, turn: int) -> dict[str, list[str]]:
    # Alternate the Shift and Officer role filters; random subsets make most filter states
    # differ between sessions, so the shared query cache does not answer them all.
    key = FILTER_KEYS[turn % len(FILTER_KEYS)]
    options = session.options(key)
    k = rng.randint(0, min(3, len(options)))
    return {key: sorted(rng.sample(options, k))}


async def _user(port: int, changes: int, think_s: float, seed: int, runs: list[Run], first: list[Run],
                start_delay: float) -> None:
    rng = random.Random(seed)
    await asyncio.sleep(start_delay)
    try:
        async with Session(port) as session:
            first.append(await session.rerun())
            for turn in range(changes):
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)
                runs.append(await session.rerun(_change(rng, session, turn)))
    except Exception as exc:  # a dropped connection is a result, not a crash of the benchmark
        runs.append(Run(0.0, "CONNECTION", [f"{type(exc).__name__}: {exc}"], 0))


async def _progress(runs: list[Run], total: int, every_s: float = 30.0) -> None:
    start = time.perf_counter()
    while True:
        await asyncio.sleep(every_s)
        times = [r.seconds for r in runs if r.status == "FINISHED_SUCCESSFULLY"]
        print(f"  {time.perf_counter() - start:5.0f} s: {len(runs)}/{total} reruns, "
              f"p50 {_percentile(times, 0.5):.2f} s, p95 {_percentile(times, 0.95):.2f} s", flush=True)


async def _wave(port: int, sessions: int, changes: int, think_s: float, seed: int, ramp_s: float,
                verbose: bool = False) -> tuple[list[Run], list[Run]]:
    runs: list[Run] = []
    first: list[Run] = []
    progress = asyncio.create_task(_progress(runs, sessions * changes)) if verbose else None
    await asyncio.gather(*(_user(port, changes, think_s, seed * 1000 + i, runs, first, ramp_s * i / max(1, sessions))
                           for i in range(sessions)))
    if progress is not None:
        progress.cancel()
    return runs, first


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(reports: int = 5_000_000, sessions: int = 30, changes: int = 10, think_s: float = 2.0, waves: int = 2,
        ramp_s: float = 5.0, seed: int = 1, log: Path | None = None, verbose: bool = True,
        busy: bool = False) -> dict:
    """Drive `sessions` concurrent websocket sessions making `changes` filter changes each; return the figures.

    With `busy`, another process keeps one core busy during each wave.
    """
    def say(text: str) -> None:
        if verbose:
            print(text, flush=True)

    folder = dataset(reports)
    say(f"dataset {folder} ({reports:,} reports)")
    result: dict = {"reports": reports, "sessions": sessions, "changes": changes, "think_s": think_s,
                    "cores": os.cpu_count(), "busy_core": busy}
    with serve(folder, log=log) as (port, proc), Sampler(proc.pid) as mem:
        result["rss_idle_mb"] = mem.now()
        # Warm-up: one session loads the dataset into the shared engine (as the first user would).
        start = time.perf_counter()
        warm = asyncio.run(_wave(port, 1, 0, 0, seed, 0))[1]
        result["first_load_s"] = time.perf_counter() - start
        if not warm or warm[0].errors:
            raise RuntimeError(f"the warm-up run failed: {warm[0].errors if warm else 'no run'}")
        result["rss_before_mb"] = mem.plateau(3)
        say(f"server on 127.0.0.1:{port}; data loaded in {result['first_load_s']:.1f} s; "
            f"RSS idle {result['rss_idle_mb']:.0f} MB, with data {result['rss_before_mb']:.0f} MB")
        all_runs: list[Run] = []
        for wave in range(1, waves + 1):
            since = time.monotonic()
            with busy_core(busy) as spinner:
                started, cpu_before = time.perf_counter(), cpu_seconds(proc.pid)
                runs, first = asyncio.run(_wave(port, sessions, changes, think_s, seed + wave, ramp_s, verbose))
                elapsed, cpu = time.perf_counter() - started, cpu_seconds(proc.pid) - cpu_before
                spun = cpu_seconds(spinner.pid) if spinner is not None else 0.0
            peak = mem.peak(since)
            after = mem.plateau(10)
            times = [r.seconds for r in runs if r.status == "FINISHED_SUCCESSFULLY"]
            errors = [e for r in runs + first for e in r.errors]
            figures = {"reruns": len(times), "errors": len(errors), "error_samples": sorted(set(errors))[:5],
                       "p50_s": _percentile(times, 0.5), "p95_s": _percentile(times, 0.95),
                       "max_s": max(times, default=float("nan")),
                       "first_run_p50_s": _percentile([r.seconds for r in first], 0.5),
                       "first_run_p95_s": _percentile([r.seconds for r in first], 0.95),
                       "rerun_kb_p50": _percentile([r.bytes / 1024 for r in runs], 0.5),
                       "rss_peak_mb": peak, "rss_after_mb": after, "wall_s": elapsed,
                       # Every run of the wave, the sessions' first runs (the opening view, cached) included.
                       "cpu_s": cpu, "cpu_ms_per_run": 1000 * cpu / max(1, len(runs) + len(first)),
                       "busy_cpu_s": spun}
            result[f"wave{wave}"] = figures
            all_runs += runs
            say(f"wave {wave}: {sessions} sessions x {changes} changes in {elapsed:.0f} s: "
                f"p50 {figures['p50_s']:.2f} s, p95 {figures['p95_s']:.2f} s, max {figures['max_s']:.2f} s, "
                f"errors {len(errors)}, "
                f"RSS peak {peak:.0f} MB, after {after:.0f} MB; server CPU {cpu:.0f} s, "
                f"{figures['cpu_ms_per_run']:.0f} ms a run"
                + (f"; the busy process used {spun:.0f} CPU s" if spinner is not None else ""))
            for sample in figures["error_samples"]:
                say(f"  error: {sample}")
        times = [r.seconds for r in all_runs if r.status == "FINISHED_SUCCESSFULLY"]
        last = result[f"wave{waves}"]
        result.update(reruns=len(times), p50_s=_percentile(times, 0.5), p95_s=_percentile(times, 0.95),
                      max_s=max(times, default=float("nan")),
                      errors=sum(result[f"wave{w}"]["errors"] for w in range(1, waves + 1)),
                      rss_peak_mb=max(result[f"wave{w}"]["rss_peak_mb"] for w in range(1, waves + 1)),
                      rss_after_mb=last["rss_after_mb"],
                      rss_growth_mb=last["rss_after_mb"] - result["wave1"]["rss_after_mb"],
                      cpu_ms_per_run=1000 * sum(result[f"wave{w}"]["cpu_s"] for w in range(1, waves + 1))
                      / max(1, sum(result[f"wave{w}"]["reruns"] + sessions for w in range(1, waves + 1))))
    result["pass"] = bool(result["p95_s"] < 2.0 and result["rss_peak_mb"] < 2048 and result["errors"] == 0)
    return result


def table(result: dict) -> str:
    """Return the figures as a Markdown table, one row per wave."""
    rows = ["| wave | sessions | reruns | p50 (s) | p95 (s) | max (s) | errors | server CPU a run (ms) | "
            "RSS before (MB) | peak (MB) | after (MB) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    w = 1
    while f"wave{w}" in result:
        f = result[f"wave{w}"]
        rows.append(f"| {w} | {result['sessions']} | {f['reruns']} | {f['p50_s']:.2f} | {f['p95_s']:.2f} | "
                    f"{f['max_s']:.2f} | {f['errors']} | {f['cpu_ms_per_run']:.0f} | {result['rss_before_mb']:.0f} | "
                    f"{f['rss_peak_mb']:.0f} | "
                    f"{f['rss_after_mb']:.0f} |")
        w += 1
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the load test, print the table and a LOAD line; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=5_000_000)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--changes", type=int, default=10, help="filter changes per session")
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean seconds a user waits between changes (uniform 0.5x-1.5x); 0 = back to back")
    parser.add_argument("--waves", type=int, default=2, help="waves of sessions (a second shows the plateau)")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds over which a wave's sessions connect")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", type=Path, help="write the server's output here")
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one core busy with another process (a Python spin loop) during each wave")
    args = parser.parse_args(argv)
    result = run(args.reports, args.sessions, args.changes, args.think, args.waves, args.ramp, args.seed, args.log,
                 busy=args.busy_core)
    print()
    print(table(result))
    print(f"\nLOAD reports={result['reports']} sessions={result['sessions']} reruns={result['reruns']} "
          f"p50_s={result['p50_s']:.2f} p95_s={result['p95_s']:.2f} max_s={result['max_s']:.2f} "
          f"errors={result['errors']} rss_before_mb={result['rss_before_mb']:.0f} "
          f"rss_peak_mb={result['rss_peak_mb']:.0f} rss_after_mb={result['rss_after_mb']:.0f} "
          f"rss_growth_mb={result['rss_growth_mb']:.0f} think_s={result['think_s']} "
          f"cpu_ms_per_run={result['cpu_ms_per_run']:.0f} busy_core={result['busy_core']} pass={result['pass']}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
