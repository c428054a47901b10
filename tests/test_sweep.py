"""Sweeps: Optuna search through the real command line, failed trials, the summary table,
TensorBoard hparams and the pre-check of search spaces."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from action3d import cli
from action3d.commands import _sweep as sweep
from action3d.engine.monitor import RunLog, run_hparams

from conftest import SMALL, run_cli


def read_hparams(tb_dir: Path) -> tuple:
    """(hparams, final metrics) of a run, read back from its TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(tb_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    params = {}
    for key, value in start.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        params[key] = getattr(value, kind)
    metrics = {info.name.tag: events.Scalars(info.name.tag)[-1].value
               for info in experiment.experiment.metric_infos}
    return params, metrics


# ------------------------------------------------------------------ through the command line

@pytest.mark.slow
def test_optuna_search_of_three_trials_maximises_best_top1_and_marks_the_best(tmp_path, cache_dir):
    """3 trials of a log-uniform learning-rate search on tiny settings, each cut by
    trainer.max_steps in the middle of its first epoch: every trial still validates (a metric
    for the search), the search maximises without a direction flag, the table marks the best
    trial and each run's hparams are in its TensorBoard events."""
    result = run_cli(["train", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
                      "hydra.sweeper.sampler.seed=0", "optim.lr=tag(log, interval(0.001, 0.1))", *SMALL,
                      "trainer.max_steps=3", "hydra.sweep.dir=sweep"], cwd=tmp_path, cache=cache_dir, check=True)
    sweep_dir = tmp_path / "sweep"
    summaries = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/summary.json")}
    assert sorted(summaries) == ["0", "1", "2"]
    assert "Warning" not in result.stderr, result.stderr[-2000:]   # no library deprecation noise
    top1 = {job: s["best_top1"] for job, s in summaries.items()}
    assert all(s["status"] == "max_steps" and s["steps"] == 3 for s in summaries.values())
    assert all(value is not None for value in top1.values()), "a run cut by max_steps validates before it ends"
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(top1.values()))          # maximised, not minimised
    assert 0.001 <= results["best_params"]["optim.lr"] <= 0.1
    rows = list(csv.DictReader(open(sweep_dir / "sweep_summary.csv")))
    best = [r for r in rows if r["best"] == "True"]
    assert len(rows) == 3 and len(best) == 1 and float(best[0]["best_top1"]) == pytest.approx(max(top1.values()))
    table = (sweep_dir / "sweep_summary.md").read_text()
    assert table.count("<- best") == 1 and "sweep summary (3 jobs)" in result.stdout
    assert f"best: job {best[0]['job']} (optim.lr=" in result.stdout
    for job, summary in summaries.items():
        params, metrics = read_hparams(sweep_dir / job / "tb")
        lr = next(float(o.split("=")[1]) for o in summary["overrides"] if o.startswith("optim.lr="))
        assert params["optim.lr"] == pytest.approx(lr) and params["data.batch_size"] == 4
        assert metrics == {"hparam/best_top1": pytest.approx(summary["best_top1"])}


@pytest.mark.slow
def test_a_failed_trial_ranks_last_and_the_search_goes_on(tmp_path, cache_dir):
    """Optuna's grid sampler runs both values (one trial at a time, the default we set); a batch
    larger than the training set fails its trial at once (one line), which is recorded and ranked
    last; the search ends normally."""
    result = run_cli(["train", "-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid",
                      "data.batch_size=choice(64, 4)", *[o for o in SMALL if not o.startswith("data.batch_size=")],
                      "trainer.max_epochs=1", "hydra.sweep.dir=sweep"],
                     cwd=tmp_path, cache=cache_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("action3d train: error:")]
    assert len(errors) == 1 and "data.batch_size=64" in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    rows = {r["overrides"]: r for r in csv.DictReader(open(tmp_path / "sweep/sweep_summary.csv"))}
    assert rows["data.batch_size=64"]["status"] == "failed" and rows["data.batch_size=64"]["best"] == "False"
    assert rows["data.batch_size=4"]["best"] == "True" and rows["data.batch_size=4"]["status"] == "finished"
    table = (tmp_path / "sweep/sweep_summary.md").read_text().splitlines()
    assert "failed: " in table[-1], "the failed trial is the last row"
    assert "sweep summary (2 jobs, 1 failed)" in result.stdout


# ------------------------------------------------------------------ in this process

def test_a_failed_job_of_a_sweep_returns_the_value_that_ranks_last(tmp_path, monkeypatch, capsys):
    from action3d.errors import Action3dError

    def diverges(cfg):
        raise Action3dError("non-finite loss (nan) at step 3")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep, "in_sweep", lambda: True)
    task = cli._task("train", diverges)
    assert task(cli_config()) == sweep.FAILED_VALUE < 0.0
    assert capsys.readouterr().err.strip() == "action3d train: error: non-finite loss (nan) at step 3"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"
    monkeypatch.setattr(sweep, "in_sweep", lambda: False)
    with pytest.raises(SystemExit) as stop:                # a single run still exits 1
        task(cli_config())
    assert stop.value.code == 1


def cli_config():
    from action3d.commands._hydra import compose_config

    return compose_config("train", [])


def test_the_train_task_returns_best_top1_for_the_sweeper():
    assert sweep.objective({"best_top1": 0.75}) == 0.75
    assert sweep.objective({"best_top1": None}) == sweep.FAILED_VALUE


def test_an_optuna_search_maximises_unless_told_otherwise():
    search = ["hydra/sweeper=optuna", "optim.lr=interval(0.001,0.1)"]
    assert sweep.search_defaults("train", search) == ["hydra.sweeper.direction=maximize", "hydra.sweeper.n_jobs=1"]
    assert sweep.search_defaults("train", [*search, "hydra.sweeper.direction=minimize", "hydra.sweeper.n_jobs=4"]) == []
    assert sweep.search_defaults("train", ["optim.lr=0.1,0.01"]) == []


def test_summary_table_ranks_jobs_marks_the_best_and_lists_failures_last(tmp_path):
    common = ["model.base_channels=8"]
    jobs = {"0": {"best_top1": 0.5, "status": "finished", "overrides": ["optim.lr=0.0123456789", *common]},
            "1": {"best_top1": None, "status": "failed", "error": "non-finite loss at step 2",
                  "overrides": ["optim.lr=0.9", *common]},
            "2": {"best_top1": 0.625, "status": "max_steps", "overrides": ["optim.lr=0.02", *common]}}
    for job, summary in jobs.items():
        (tmp_path / job).mkdir()
        (tmp_path / job / "summary.json").write_text(json.dumps({"best_epoch": 1, "checkpoint": "c", **summary}))
    rows = sweep.write_summary(tmp_path)
    assert [r["best"] for r in rows] == [False, False, True]
    lines = (tmp_path / "sweep_summary.md").read_text().splitlines()[2:]
    assert lines[0].startswith("| 2 | `optim.lr=0.02` | 62.50 |") and lines[0].endswith("<- best |")
    assert lines[1].startswith("| 0 | `optim.lr=0.01235` | 50.00 |")
    assert lines[2].startswith("| 1 | `optim.lr=0.9` | n/a |") and "failed: non-finite loss at step 2" in lines[2]


def test_hparams_are_written_once_and_read_back(tmp_path):
    cfg = cli_config()
    cfg.optim.lr = 0.02
    params = run_hparams(cfg, ["optim.lr=0.02", "model=tiny", "data.flip=false", "+data.mean=[1,2,3]"])
    assert params == {"optim.lr": 0.02, "model": "tiny", "data.flip": False, "data.mean": "[1,2,3]"}
    log = RunLog(tmp_path, enabled=True)
    log.hparams(params, {"hparam/best_top1": 0.75}, step=12)
    log.close()
    assert read_hparams(tmp_path / "tb") == (params, {"hparam/best_top1": 0.75})


# ------------------------------------------------------------------ bad search spaces: one line, nothing runs

BAD_SWEEPS = [
    (["optim.lr=interval(0.001,0.1)"], ["optim.lr=interval(0.001,0.1)", "hydra/sweeper=optuna"]),
    (["hydra/sweeper=optuna", "optim.lrr=tag(log,interval(0.001,0.1))"], ["optim.lrr: unknown key", "optim.lr"]),
    (["hydra/sweeper=optuna", "optim.lr=tag(log,interval(0,0.1))"], ["optim.lr=tag(log,interval(0,0.1))",
                                                                      "larger than 0"]),
    (["hydra/sweeper=optuna", "optim.lr=interval(0.1,0.001)"], ["optim.lr=interval(0.1,0.001)", "smaller"]),
    (["hydra/sweeper=optuna", "optim.lr=interval(0.1)"], ["optim.lr=interval(0.1)", "missing a required argument"]),
    (["hydra/sweeper=optuna", "optim.lr=interval(-1,0.1)"], ["optim.lr=-1.0", "> 0"]),
    (["hydra/sweeper=optuna", "model.depth=choice(18,19)"], ["model.depth=19", "expected one of 10, 18, 34"]),
    (["hydra/sweeper=optuna", "hydra.sweeper.n_trials=abc", "optim.lr=interval(0.01,0.1)"],
     ["hydra.sweeper.n_trials", "abc"]),
]


@pytest.mark.parametrize("overrides,expected", BAD_SWEEPS, ids=[" ".join(o) for o, _ in BAD_SWEEPS])
def test_a_bad_search_is_one_line_before_anything_runs(overrides, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_run_hydra", lambda *a: pytest.fail("an invalid search reached Hydra"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("action3d train: error: "), err
    for text in expected:
        assert text in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_search_without_the_sweeper_installed_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "optuna" in name else real(name, *a))
    monkeypatch.setattr(cli, "_run_hydra", lambda *a: pytest.fail("reached Hydra"))
    assert cli.main(["train", "-m", "hydra/sweeper=optuna", "optim.lr=interval(0.01,0.1)"]) == 2
    assert "pip install hydra-optuna-sweeper" in capsys.readouterr().err
