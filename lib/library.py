"""`python -m lib.library save|append NAME FILE... | list [--json] | versions|delete|own NAME | rollback NAME VERSION`.

The saved-dataset library (lib/ingest/library.py) from the command line, in OSE_DATA_DIR. A refused
action prints a one-line reason on stderr and exits 2. The command is the operator's tool: it runs
as the host's user and sees every dataset. A dataset it saves belongs to every force (only
unrestricted users see it in the app) unless `--force-scope` names the forces it belongs to; `own`
gives a dataset (one saved before owners, say) an owner and forces.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lib.ingest import library, staging
from lib.ingest.pipeline import AUTO, DUPLICATE_CHOICES, RejectedFile
from lib.model.scope import UNRESTRICTED, Actor, Scope


def _read(paths: Sequence[Path], fmt: str, force: str | None, duplicates: str) -> staging.StagedUpload:
    """Ingest files from disk in the reading worker; raise RejectedFile for one that cannot be read."""
    # In a worker process inside the upload budget, as in the app: a hostile file fails its own read only. In
    # batches where it can be (as `python -m lib.ingest`), staged on disk for the library to copy.
    return staging.read_files(paths, fmt=fmt, duplicates=duplicates, force=force)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "command line"


def parser() -> argparse.ArgumentParser:
    """Return the command's argument parser."""
    p = argparse.ArgumentParser(prog="python -m lib.library", description=__doc__.splitlines()[2].strip())
    scope_help = ("a force the dataset belongs to, so that force's users see it in the app (repeat for several; "
                  "default: every force, seen only by unrestricted users)")
    sub = p.add_subparsers(dest="action", required=True)
    for action in ("save", "append"):
        s = sub.add_parser(action, help=f"{action} files as a dataset" if action == "save" else "append files")
        s.add_argument("name")
        s.add_argument("files", nargs="+", type=Path)
        s.add_argument("--format", default=AUTO, help="auto | canonical | uk-national | profile:NAME")
        s.add_argument("--force", help="force name for extracts that do not carry one")
        s.add_argument("--duplicates", default="set-aside", choices=DUPLICATE_CHOICES)
        s.add_argument("--wait", type=float, default=library.LOCK_WAIT_S,
                       help="seconds to wait for another user's change to the dataset (default %(default)s)")
        if action == "save":
            s.add_argument("--force-scope", action="append", metavar="FORCE", help=scope_help)
    listing = sub.add_parser("list", help="list saved datasets")
    listing.add_argument("--json", action="store_true", help="a JSON list: name, version, reports, damaged")
    sub.add_parser("versions", help="list a dataset's kept versions").add_argument("name")
    back = sub.add_parser("rollback", help="make an earlier version current (as a new version)")
    back.add_argument("name")
    back.add_argument("version", type=int)
    sub.add_parser("delete", help="delete a dataset and all its versions").add_argument("name")
    own = sub.add_parser("own", help="record who a dataset belongs to: its owner and forces")
    own.add_argument("name")
    own.add_argument("--by", help="the username of its owner (default: you)")
    own.add_argument("--force-scope", action="append", metavar="FORCE", help=scope_help)
    return p


def _scope(forces: list[str] | None) -> Scope:
    return UNRESTRICTED if not forces else Scope(forces=frozenset(f.strip() for f in forces))


def run(args: argparse.Namespace) -> str:
    """Do one action; return what to print."""
    if args.action == "save":
        result = _read(args.files, args.format, args.force, args.duplicates)
        scope = _scope(args.force_scope)
        path = library.save(args.name, result, wait=args.wait, actor=Actor(_user(), scope))
        r = result.report
        return (f"saved '{args.name.strip()}' version 1 for {scope.describe()}: {r['reports_loaded']:,} reports, "
                f"{r['rows_quarantined']:,} rows set aside -> {path}")
    if args.action == "append":
        record = library.append(args.name, _read(args.files, args.format, args.force, args.duplicates),
                                user=_user(), wait=args.wait)
        return (f"appended to '{args.name.strip()}' as version {record['version']}: "
                f"{record['reports_loaded']:,} reports added, {record['rows_quarantined']:,} rows set aside "
                f"({record['already_in_dataset']:,} already in the dataset)")
    if args.action == "list":
        found = library.entries()
        if args.json:
            return json.dumps([{"name": e.name, "version": e.version, "reports": e.reports, "loads": e.loads,
                                "updated": e.updated, "damaged": e.damaged, "owner": e.owner,
                                "belongs_to": e.belongs_to} for e in found])
        return "\n".join(f"{e.name}\tv{e.version}\t" + (f"DAMAGED: {e.damaged}" if e.damaged
                                                         else f"{e.reports:,} reports\t{e.updated}")
                         for e in found) or "no saved datasets"
    if args.action == "versions":
        return "\n".join(f"{'*' if v.current else ' '} v{v.number}\t{v.created}\t{v.by}\t{v.action}\t"
                         + (f"DAMAGED: {v.damaged}" if v.damaged else f"{v.reports:,} reports")
                         for v in library.versions(args.name))
    if args.action == "rollback":
        number = library.rollback(args.name, args.version, user=_user())
        return f"rolled '{args.name.strip()}' back to version {args.version}, as version {number}"
    if args.action == "own":
        scope = _scope(args.force_scope)
        library.set_owner(args.name, args.by or _user(), scope)
        return f"'{args.name.strip()}' belongs to {args.by or _user()}, for {scope.describe()}"
    library.delete(args.name)
    return f"deleted '{args.name.strip()}'"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run one library action; exit 2 with a one-line reason if it is refused."""
    args = parser().parse_args(argv)
    try:
        print(run(args))
    except (library.LibraryError, RejectedFile) as exc:
        print(f"{args.action} refused: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk full or a folder not writable: still one line, never a traceback
        print(f"{args.action} failed: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001  (a file damaged in a way no check foresaw: one line all the same)
        print(f"{args.action} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
