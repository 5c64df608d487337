"""The commit a run's rows record is the one checked out when the run started: a commit made in the
checkout while a long run trains (its code already loaded) must not relabel what it writes later."""

from __future__ import annotations

import json

import pandas as pd

from disentbench.bench import cli, provenance
from tests.helpers import tiny_cpu_args


def test_a_run_records_the_commit_checked_out_when_it_started(tiny_profile, tmp_path, monkeypatch):
    head = {"now": "started-at-this-commit"}

    def fake_git(cmd, **kwargs):  # stands in for git: `rev-parse HEAD` answers the current head
        class Done:
            stdout = head["now"] if cmd[1] == "rev-parse" else ""

        return Done()

    planned = cli.plan

    def plan_then_commit(args):  # someone commits in the checkout once the run has started
        result = planned(args)
        head["now"] = "committed-while-training"
        return result

    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
    monkeypatch.setattr(provenance.subprocess, "run", fake_git)
    monkeypatch.setattr(cli, "plan", plan_then_commit)
    provenance.read_git_commit.cache_clear()
    try:
        assert cli.main(tiny_cpu_args(tiny_profile, tmp_path / "r", "--methods", "vae")) == 0
        provenance.read_git_commit.cache_clear()  # a process reading git only now sees the new head
        assert provenance.read_git_commit() == "committed-while-training"
        rows = pd.read_csv(tmp_path / "r" / "runs.csv")
        assert set(rows["git_commit"]) == {"started-at-this-commit"}
        record = json.loads(next((tmp_path / "r" / "cells").glob("*/scores.json")).read_text())
        assert record["git_commit"] == "started-at-this-commit"
    finally:
        monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
        provenance.read_git_commit.cache_clear()
