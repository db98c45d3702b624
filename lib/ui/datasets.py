"""The dataset picker: the sample, OSE_DATASET, saved datasets and this session's upload; the disclosure switch."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import streamlit as st

from lib import ingest
from lib.engine import fastpath
from lib.engine.store import SAMPLE_DIR, Dataset, DatasetError
from lib.ingest import library, staging
from lib.model.settings import settings
from lib.security import access
from lib.ui import cache, context


@dataclass(frozen=True)
class Source:
    """A dataset the picker offers: a path the engine opens, or a dataset already loaded."""

    key: str
    label: str
    path: str | None = None
    dataset: Dataset | None = None


SAMPLE_SOURCE = Source("sample", "Synthetic sample (not real data)", str(SAMPLE_DIR))


SESSION_DATASET_KEY = "_ose_session_dataset"


PICK_NEXT_KEY = "_ose_pick_next"


def is_synthetic(path: str | Path) -> bool:
    """Say whether a dataset folder was written by the synthetic generator (it leaves effects.json)."""
    return (Path(path) / "effects.json").is_file()


def sources(user: access.User, demo: bool = False) -> list[Source]:
    """Return the datasets on offer: OSE_DATASET first when set, the sample, the user's saved ones, this session's.

    In demo mode only synthetic data is offered: the sample, and OSE_DATASET if the generator wrote it.
    Saved datasets are those the user's scope covers: another force's is never offered, nor opened by a link.
    """
    found = []
    env = settings().dataset
    if env is not None and (not demo or is_synthetic(env)):
        found.append(Source("env", f"{env.name} (OSE_DATASET)", str(env)))
    found.append(SAMPLE_SOURCE)
    if demo:
        return found
    for entry in library.entries(actor=user.actor):
        if entry.damaged:  # shown on the Data page with what to do; never offered, so no page trips on it
            continue
        found.append(Source(f"lib:{entry.name}", f"{entry.name} (saved)", str(entry.path)))
    session = st.session_state.get(SESSION_DATASET_KEY)
    if session is not None:
        found.append(Source("session", f"{session.name} (this session only)", dataset=session))
    return found


def _open(source: Source) -> Dataset:
    if source.dataset is not None:
        return source.dataset
    engine = cache.engine()
    ds = engine.open(source.path, name=source.label)
    # Per dataset version, not per filter state: the officers' id order (about 0.4 s at 5,000,000 reports), kept.
    fastpath.prepare_officers(engine, ds)
    return ds


def pick_next(label_key: str) -> None:
    """Make the picker show the dataset with this source key on the next run."""
    st.session_state[PICK_NEXT_KEY] = label_key


def use_for_session(name: str, result: ingest.IngestResult | staging.StagedUpload) -> Dataset:
    """Load an ingest result (or a staged upload) for this session only and make it the current dataset."""
    reports, tactics = staging.tables_of(result)
    key = hashlib.sha1(f"{id(st.session_state)}:{name}:{datetime.now().isoformat()}".encode()).hexdigest()[:12]
    ds = cache.engine().add(name, reports, tactics, key=key)
    previous = st.session_state.get(SESSION_DATASET_KEY)
    if previous is not None and previous.id != ds.id:
        cache.engine().drop(previous)  # one session upload at a time: the old one goes
    st.session_state[SESSION_DATASET_KEY] = ds
    pick_next("session")
    context.audit_event("upload", dataset=name, rows=result.report["rows_loaded"],
                set_aside=result.report["rows_quarantined"], kept="this session")
    return ds


def _warn_unopened(source: Source, reason: str) -> None:
    if source.key == "env":
        st.sidebar.warning(f"Could not open OSE_DATASET={source.path}: {reason}. "
                           "Showing the synthetic sample instead.", icon="⚠️")
    else:
        st.sidebar.warning(f"Could not open {source.label} at {source.path}: {reason}.", icon="⚠️")


LINK_MISSED_KEY = "_ose_link_missed"  # set when a link named a dataset not available: its filters are not applied


def missing_link_message(wanted: str, offered: list[str]) -> str:
    """Say that a link's dataset is not available here, why it may be, and what is offered instead."""
    if wanted == "session":
        what = "an upload explored for one session only, which lives only in the browser session that loaded it"
    elif wanted.startswith("lib:"):  # its name is not repeated: whether another force has one by it is not ours to say
        what = "a saved dataset that is not in the library or not open to your account"
    elif wanted == "env":
        what = "the dataset this server was started with, which is not available to you"
    else:
        what = f"a dataset ('{wanted}') this app does not know"
    return (f"This link was made on {what}. It is not opened here, and its filters are not applied to another "
            f"dataset. Showing {offered[0]} at its opening view; the datasets open to you are: "
            f"{'; '.join(offered)} (pick one in the sidebar).")


def dataset_picker(user: access.User, demo: bool = False) -> Dataset:
    """Draw the dataset picker of the datasets this user may open and return the chosen one (else the sample)."""
    usable: list[tuple[Source, Dataset]] = []
    for source in sources(user, demo):
        try:
            usable.append((source, _open(source)))
        except DatasetError as exc:
            _warn_unopened(source, str(exc))
        except Exception as exc:  # an unreadable file must never take the page down
            _warn_unopened(source, f"{type(exc).__name__}: {exc}")
    if not usable:
        st.error("No dataset could be opened, not even the bundled sample. Run `make sample`.")
        st.stop()
    labels = [s.label for s, _ in usable]
    keys = [s.key for s, _ in usable]
    wanted = st.session_state.pop(PICK_NEXT_KEY, None)
    if wanted in keys:
        st.session_state["dataset_choice"] = labels[keys.index(wanted)]
    if "dataset_choice" not in st.session_state or st.session_state["dataset_choice"] not in labels:
        wanted = st.query_params.get("dataset")
        st.session_state["dataset_choice"] = labels[keys.index(wanted)] if wanted in keys else labels[0]
        if wanted and wanted not in keys:  # a link to a dataset not here: say so, never a silent substitute
            st.session_state[LINK_MISSED_KEY] = wanted
            st.warning(missing_link_message(wanted, labels), icon=":material/link_off:")
    choice = st.sidebar.selectbox("Dataset", labels, key="dataset_choice")
    source, ds = usable[labels.index(choice)]
    # The URL names the dataset only when it is not the default, so plain links stay short.
    st.session_state["_ose_dataset_param"] = source.key if source.key != keys[0] else None
    return ds


def disclosure_default_threshold() -> int:
    """Return the disclosure threshold: the users file's, else OSE_DISCLOSURE_THRESHOLD, else 10."""
    from lib.privacy import disclosure
    from lib.ui import login

    cfg = login.config()
    if cfg is not None and cfg.disclosure_threshold:
        return cfg.disclosure_threshold
    try:
        return disclosure.threshold_from_env()
    except ValueError as exc:
        st.error(f"Officer Safety Explorer will not start: {exc}.")
        st.stop()


def disclosure_setting(user: access.User, demo: bool, threshold: int) -> int | None:
    """Return the disclosure threshold in force: always for viewers and demos, a sidebar choice for others."""
    if access.protection_forced(user, demo):
        st.sidebar.caption(f"Small numbers hidden: counts below {threshold} are suppressed"
                           + (" (demonstration)." if demo else " for your role.")
                           + " Every count is adjusted by up to 3 either way (cell key method), the same way "
                             "each time it is shown.")
        return threshold
    on = st.sidebar.toggle(f"Hide counts below {threshold}", key="ose_disclosure",
                           help="Disclosure control, as for publication: small counts, and counts that could be "
                                "worked out from totals, are hidden in every chart, table and download.")
    return threshold if on else None
