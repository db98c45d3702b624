"""Reading uploads into canonical reports: files, formats, mapping, pseudonyms, the dataset library.

`ingest(files)` runs the whole pipeline (lib/ingest/pipeline.py); `read_extract(name, data)` reads one
file's cells as text (lib/ingest/reading.py); `read_file(path)` gives the engine one file's tables, and
`pseudonymise_ids` its officer-id hook and `record_keys` its record-key hook (the cell key method).
`python -m lib.ingest FILE... --out DIR` runs it from the command line. The app and the command line read
uploads with `worker.run(...)` (lib/ingest/worker.py): in a process of their own, inside a memory and time budget,
in batches where they can be (`pipeline.load`); the app's uploads are staged on disk (lib/ingest/staging.py).
"""
from lib.ingest.pipeline import (
    AUTO,
    NO_FORMAT,
    IngestResult,
    available_formats,
    ingest,
    profile_dir,
    pseudonymise_ids,
    read_file,
    reason_counts,
    record_keys,
    tables,
    write,
)
from lib.ingest.reading import Limits, RawExtract, RejectedFile, read_extract

__all__ = ["AUTO", "NO_FORMAT", "IngestResult", "Limits", "RawExtract", "RejectedFile", "available_formats",
           "ingest", "profile_dir", "pseudonymise_ids", "read_extract", "record_keys",
           "read_file", "reason_counts", "tables", "write"]
