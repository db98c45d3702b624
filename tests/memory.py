"""Peak memory of an upload through the Data page's code path: `python -m tests.memory before|after FILE FORCE`.

Prints one JSON line: the server process's peak RSS and the reading worker's, in MB, with CPU seconds.
The worker's peak is its own high-water mark (VmHWM, read while it runs): getrusage's figure for a child
also counts the parent's memory at the moment it was started, which here holds the whole upload.
"""
from __future__ import annotations

import io
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path


class WorkerPeak:
    """Follow this process's reading workers and keep the highest VmHWM seen."""

    def __init__(self) -> None:
        self.kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> WorkerPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.02):
            try:
                children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
            except OSError:
                continue
            for pid in children:
                try:  # only once it runs the worker: before exec it still shares the server's memory
                    if b"lib.ingest.worker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.kb = max(self.kb, int(line.split()[1]))


def main(argv: list[str]) -> None:
    """Read and save one file as the Data page does (`before`: whole, as it did; `after`: staged)."""
    from lib import ingest
    from lib.ingest import library, staging, worker

    mode, path, force = argv[0], Path(argv[1]), argv[2]
    uploaded = io.BytesIO(path.read_bytes())  # Streamlit's UploadedFile holds the upload in memory
    started = time.process_time()
    with WorkerPeak() as peak:
        if mode == "before":  # app_pages/data.py and lib/ui/uploads.read_uploads before staging
            result = worker.run(ingest.ingest, [(path.name, uploaded.getvalue())], force=force)
        else:
            result = staging.read_upload([(path.name, uploaded)], force=force)
        library.save("upload", result)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"server_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "worker_mb": peak.kb / 1024, "server_cpu_s": round(time.process_time() - started, 1),
                      "worker_cpu_s": round(children.ru_utime + children.ru_stime, 1),
                      "rows_in": result.report["rows_in"], "rows_loaded": result.report["rows_loaded"]}))


if __name__ == "__main__":
    main(sys.argv[1:])
