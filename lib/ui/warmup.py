"""The warm-up at server start: imports, and in local mode the sample with its opening Overview."""
from __future__ import annotations

from dataclasses import replace

from lib.engine import query
from lib.engine.query import Scope
from lib.engine.store import Dataset
from lib.model.settings import settings
from lib.security import access
from lib.ui import cache, datasets


def warm_up() -> None:
    """Get the opening page ready before the first browser connects: run once, on a thread, at server start.

    Streamlit runs app.py only when a browser connects, once it has loaded the page; app.py starts this
    as the server starts (its st.App lifespan), so the two overlap. It makes the first run's imports and,
    in local mode only, loads the bundled sample and computes its opening Overview for the local user
    into the caches the first run reads (which waits for anything not finished). With a users file it
    loads no data: nothing is read before someone signs in, and every result is keyed by their scope.
    """
    import threading

    from lib.security import users
    from lib.ui import login

    if users.config_path() is not None or not login.serves_this_machine():
        warm_imports()
        return
    # DuckDB loads the sample with the interpreter mostly free: the other imports go meanwhile.
    imports = threading.Thread(target=warm_imports, name="ose-warm-up-imports", daemon=True)
    imports.start()
    try:
        ds = datasets._open(datasets.SAMPLE_SOURCE)  # the picker opens it on every first run
        if settings().dataset is None:  # else the picker opens OSE_DATASET first
            # A demonstration publishes perturbed counts (the cell key method): warm what it will read.
            _warm_overview(ds, replace(access.LOCAL_USER.scope,
                                       perturbed=access.protection_forced(access.LOCAL_USER, settings().demo)))
    finally:
        imports.join()


def _warm_overview(ds: Dataset, scope: Scope) -> None:
    # The Overview's opening view, as the page runs it (lib/ui/opening.py): the filters' values, the
    # queries and the chart specs, into the caches its first run reads.
    from lib.ui import opening

    cache.filter_options(ds, scope)
    opening.chart_specs(ds, query.default_filters(ds), scope)  # its queries too


def warm_imports() -> None:
    """Make the imports a server makes at start (bench/pages.py makes them too: AppTest starts no server)."""
    # The first run's other imports: Altair and the chart builders, Ibis's DuckDB backend (loaded by the
    # first query), the login gate and the pages' helpers; and scipy.stats (funnel verdicts, shrinkage,
    # intervals), most of a second of CPU on first use, which the first Officer risk page paid in its first funnel.
    import ibis.backends.duckdb  # noqa: F401
    import scipy.optimize  # noqa: F401
    import scipy.stats  # noqa: F401

    from lib.analysis import reference  # noqa: F401
    from lib.present import chartspec, tables, vegalite, wording  # noqa: F401
    from lib.privacy import disclosure  # noqa: F401
    from lib.ui import login  # noqa: F401
