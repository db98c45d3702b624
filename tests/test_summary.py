"""Headless monitoring: JSON of the overall rate, rate ratios and funnel outliers, from any dataset form."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lib import ingest, summary, synth
from lib.engine.query import UNRESTRICTED, Filters
from lib.ingest import library

from .conftest import FIXTURES, ROOT


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os
    return subprocess.run([sys.executable, "-m", "lib.summary", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_summary_of_a_synthetic_folder_names_the_planted_outlier_teams(tmp_path):
    data = synth.generate(300_000, seed=21)
    synth.write(data, tmp_path / "ds")
    done = run(str(tmp_path / "ds"), "--by", "team", "--adjust")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["measure"] == "officer_injured"
    assert set(out["overall"]) >= {"numerator", "denominator", "rate", "ci_low", "ci_high"}
    assert out["overall"]["ci_low"] < out["overall"]["rate"] < out["overall"]["ci_high"]
    night = next(r for r in out["rate_ratios"]["shift"] if r["group"] == "Night")
    truth = data.effects["officer_injured"]["expected_marginal_rate_ratio"]["shift"]["ratios"]["Night"]
    # The reference is the largest shift group, so compare Night with it through the planted ratios.
    ref = night["reference"]
    ref_truth = 1.0 if ref == "Early" else data.effects["officer_injured"]["expected_marginal_rate_ratio"][
        "shift"]["ratios"][ref]
    assert night["ci_low"] <= truth / ref_truth <= night["ci_high"]
    flagged = {o["group"] for o in out["outliers"]}
    assert {t["team"] for t in data.effects["outlier_teams"]} <= flagged
    assert all(o["limit"] == "99.8%" and o["level"] == "team" for o in out["outliers"])
    # Adjusted for case mix, Night against the largest shift recovers the planted (conditional) ratio.
    planted = data.effects["officer_injured"]["rate_ratio"]["shift"]["ratios"]
    night = next(r for r in out["adjusted_rate_ratios"]["shift"] if r["group"] == "Night")
    assert night["ci_low"] <= planted["Night"] / planted.get(night["reference"], 1.0) <= night["ci_high"]
    assert night["adjusted_for"] == ["officer_role", "resistance", "single_crewed", "location_type"]
    assert set(out["adjusted_rate_ratios"]) == {"shift", "role", "tactic_group"}
    # How the teams were judged: method, minimum volume, how many compared and judged, and flags expected by chance.
    assert out["minimum_volume"] == 30 and out["method"].startswith("Crude rates")
    assert out["groups_judged"] <= out["groups_compared"]
    assert out["expected_by_chance"] == pytest.approx(out["groups_judged"] * 0.001)
    assert all(o["denominator"] >= out["minimum_volume"] for o in out["outliers"])


def test_summary_reads_a_csv_file_and_a_saved_dataset_by_name(tmp_path, monkeypatch):
    csv = run(str(FIXTURES / "small_canonical.csv"), "--by", "area", "--measure", "subject_injured")
    assert csv.returncode == 0, csv.stderr
    out = json.loads(csv.stdout)
    assert (out["overall"]["numerator"], out["overall"]["denominator"]) == (2, 9)
    monkeypatch.setenv("OSE_DATA_DIR", str(tmp_path / "var"))
    library.save("Kent", ingest.ingest([("small.csv", (FIXTURES / "small_canonical.csv").read_bytes())]))
    saved = run("Kent", "--force", "Southshire Police", env={"OSE_DATA_DIR": str(tmp_path / "var")})
    assert saved.returncode == 0, saved.stderr
    out = json.loads(saved.stdout)
    assert out["filters"] == "Southshire Police"
    assert out["overall"]["denominator"] == 5


def test_officer_level_funnel(engine, small):
    out = summary.summarise(engine, small, Filters(), UNRESTRICTED, "officer_injured", "officer")
    assert out["groups_compared"] == 7  # OF1..OF8 less OF4, whose one report did not answer


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere"], "neither a file, a dataset folder nor a saved dataset's name"),
    ([str(FIXTURES / "small_canonical.csv"), "--from", "yesterday"], "is not YYYY-MM-DD"),
])
def test_bad_arguments_exit_2_with_a_reason(args, message):
    done = run(*args)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.slow
def test_roster_adds_training_compliance_and_the_planted_effect(tmp_path):
    data = synth.generate(200_000, seed=31)
    synth.write(data, tmp_path / "ds")
    done = run(str(tmp_path / "ds"), "--roster", str(tmp_path / "ds"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)["training"]
    assert 0 < out["compliance"]["share"] < 1 and out["compliance"]["officers"] == len(data.officers)
    effect = out["effect"]
    truth = data.effects["training"]["effect_on_use_of_force"]
    assert effect["ci_low"] <= truth <= effect["ci_high"]
    assert set(effect) >= {"measure", "estimate", "ci_low", "ci_high", "method"}


def test_roster_from_extract_files(tmp_path):
    officers = tmp_path / "officers.csv"
    officers.write_text("Officer ID,Role,Team\nOF1,Response,A\nOF2,Response,A\n")
    events = tmp_path / "training.csv"
    events.write_text("Officer,Training date,Course,Hours\nOF1,05/03/2024,Personal safety training,12\n")
    done = run(str(FIXTURES / "small_canonical.csv"), "--roster", str(officers), "--roster", str(events))
    assert done.returncode == 0, done.stderr
    compliance = json.loads(done.stdout)["training"]["compliance"]
    assert (compliance["officers"], compliance["compliant"]) == (2, 1)


def test_adjust_adds_adjusted_ratios_shaped_like_the_crude_ones():
    done = run(str(FIXTURES / "small_canonical.csv"), "--by", "area", "--adjust")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    adjusted = out["adjusted_rate_ratios"]
    assert set(adjusted) == {"shift", "role", "tactic_group"}
    crude_keys = set(out["rate_ratios"]["shift"][0])
    for key, rows in adjusted.items():
        assert rows, key
        for row in rows:
            assert set(row) == crude_keys | {"adjusted_for", "method"}
            assert row["group"] != row["reference"]
            dimension = {"role": "officer_role"}.get(key, key)
            assert row["adjusted_for"] == [d for d in ("officer_role", "shift", "resistance", "single_crewed",
                                                        "location_type") if d != dimension]
    assert "adjusted_rate_ratios" not in json.loads(run(str(FIXTURES / "small_canonical.csv")).stdout)
    chosen = json.loads(run(str(FIXTURES / "small_canonical.csv"), "--adjust-for", "shift").stdout)
    assert chosen["adjusted_rate_ratios"]["role"][0]["adjusted_for"] == ["shift"]
    assert chosen["adjusted_rate_ratios"]["shift"][0]["adjusted_for"] == []


def test_officer_summary_of_the_bundled_sample_shows_pseudonyms_never_raw_ids(capsys):
    import re

    from lib.engine.store import SAMPLE_DIR
    from lib.ingest import pseudonym

    # The sample's files hold raw ids (OF003351); lib.summary opens them as the app does, pseudonymised.
    assert summary.main([str(SAMPLE_DIR), "--by", "officer", "--roster", str(SAMPLE_DIR)]) == 0
    text = capsys.readouterr().out
    out = json.loads(text)
    assert not re.search(r"OF\d{6}", text)
    assert out["outliers"] and all(pseudonym.is_pseudonym(o["group"]) for o in out["outliers"])  # two officers
    assert out["training"]["effect"]["officers_trained"] > 0  # the folder's roster, pseudonymised too, still joins
