"""`python -m lib.summary --protect viewer`: exactly what a viewer sees, checked headlessly.

Whole months, nothing for a selection under the threshold, counts perturbed by the cell key method (rates
from them), hidden values null, and a `protection` key naming the method and its parameters.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from lib import summary
from lib.engine.store import SAMPLE_DIR
from lib.privacy import cellkey

from .conftest import ROOT

SECRET = "the summary test's secret key, forty bytes"


@pytest.fixture(autouse=True)
def _key(monkeypatch, tmp_path):
    monkeypatch.setenv("OSE_PSEUDONYM_KEY", SECRET)
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))


def run(capsys, *args: str) -> dict:
    assert summary.main([str(SAMPLE_DIR), *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def reports() -> pd.DataFrame:
    frame = pd.read_parquet(SAMPLE_DIR / "reports.parquet")
    frame["key"] = cellkey.record_keys(frame["report_id"].to_numpy(dtype=object), SECRET.encode())
    when = pd.to_datetime(frame["occurred_at"])
    return frame[(when >= "2023-04-01") & (when < "2024-04-01")]


def published(rows: pd.DataFrame) -> int:
    return cellkey.perturb_one(len(rows), int(rows["key"].sum()))


def test_a_viewers_summary_publishes_perturbed_counts_whole_months_and_names_its_protection(capsys, reports):
    # Days inside April 2023 and March 2024: a viewer's period is the whole months.
    shown = run(capsys, "--from", "2023-04-10", "--to", "2024-03-20", "--protect", "viewer")
    exact = run(capsys, "--from", "2023-04-01", "--to", "2024-03-31")
    assert shown["filters"].startswith("1 Apr 2023 to 31 Mar 2024")
    answered = reports[reports["officer_injured"].notna()]
    injured = answered[answered["officer_injured"].astype(bool)]
    overall = shown["overall"]
    assert exact["overall"]["reports"] == len(reports) and exact["overall"]["numerator"] == len(injured)
    assert overall["reports"] == published(reports)
    assert overall["denominator"] == min(published(answered), overall["reports"])
    assert overall["numerator"] == min(published(injured), overall["denominator"])
    assert overall["rate"] == pytest.approx(overall["numerator"] / overall["denominator"], abs=1e-6)
    assert (overall["reports"], overall["numerator"], overall["denominator"]) != (
        exact["overall"]["reports"], exact["overall"]["numerator"], exact["overall"]["denominator"])
    protection = shown["protection"]
    assert protection["perturbation"]["max_adjustment"] == 3
    assert protection["perturbation"]["table"] == "data/perturbation_table.csv"
    assert protection["suppression"]["threshold"] == 10 and protection["periods"] == "whole calendar months"
    assert "protection" not in exact
    # Shift rate ratios: the numerators and denominators are the published counts of each shift.
    for row in shown["rate_ratios"]["shift"]:
        mine = answered[answered["shift"] == row["group"]]
        if row["denominator"] is not None:
            assert row["denominator"] == min(published(mine), published(reports[reports["shift"] == row["group"]]))


def test_a_hidden_count_is_null_in_a_viewers_summary_and_a_number_for_an_analyst(capsys):
    force = ["--force", "Cumbria Constabulary", "--from", "2023-04-01", "--to", "2024-03-31"]
    shown = run(capsys, *force, "--protect", "viewer")
    exact = run(capsys, *force)
    hidden = [r for rows in shown["rate_ratios"].values() for r in rows if r["numerator"] is None]
    assert hidden, "the small force's year should hide some group's count"
    for r in hidden:
        assert r["ratio"] is None and r["ci_low"] is None and r["ci_high"] is None
    # The analyst's figures are all numbers (the reference group, the largest, can differ between the two when
    # two groups are about the same size: the viewer's is chosen on published counts).
    assert all(r["numerator"] is not None for rows in exact["rate_ratios"].values() for r in rows)


def test_a_selection_under_the_threshold_shows_only_why(capsys):
    shown = run(capsys, "--force", "Cumbria Constabulary", "--shift", "Night", "--from", "2024-04-01",
                "--to", "2025-03-31", "--role", "Custody", "--protect", "viewer")
    assert shown["shown"] is False and "too few to show" in shown["reason"]
    assert "overall" not in shown and shown["protection"]["minimum_reports"] == 10


def test_a_viewers_training_figures_count_officers_through_the_cell_key_method(capsys):
    shown = run(capsys, "--protect", "viewer", "--roster", str(SAMPLE_DIR))["training"]
    exact = run(capsys, "--roster", str(SAMPLE_DIR))["training"]
    officers = pd.read_parquet(SAMPLE_DIR / "officers.parquet")["officer_id"].astype(str)
    # The sample's officers are raw ids, pseudonymised on reading: key them as the app does, by pseudonym.
    from lib.ingest import pseudonym

    pseudonyms = pd.Series(pseudonym.pseudonymise(officers.tolist()))
    keys = cellkey.record_keys(pseudonyms.to_numpy(dtype=object), SECRET.encode())
    assert exact["compliance"]["officers"] == len(officers)
    assert shown["compliance"]["officers"] == cellkey.perturb_one(len(officers), int(keys.sum()))
    assert shown["compliance"]["share"] == pytest.approx(
        shown["compliance"]["compliant"] / shown["compliance"]["officers"], abs=1e-6)
    for key in ("officers_trained", "officers_comparison"):
        assert abs(shown["effect"][key] - exact["effect"][key]) <= cellkey.MAX_ADJUSTMENT
    # The effect itself is the model's estimate from the exact panel, for every role.
    assert shown["effect"]["estimate"] == exact["effect"]["estimate"]
    assert (shown["compliance"]["officers"], shown["effect"]["officers_trained"]) != (
        exact["compliance"]["officers"], exact["effect"]["officers_trained"])


def test_officer_level_detail_is_refused_to_a_viewer():
    run_ = subprocess.run([sys.executable, "-m", "lib.summary", str(SAMPLE_DIR), "--protect", "viewer",
                           "--by", "officer"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OSE_PSEUDONYM_KEY": SECRET})
    assert run_.returncode == 2
    assert run_.stderr.startswith("rejected: --by officer cannot be combined with --protect")
