"""Experiment trackers (`trainer.loggers`): a real MLflow tracking server on 127.0.0.1, W&B offline,
an unreachable tracker at the start, a tracker failing in the middle of a run, rank 0 only."""
from __future__ import annotations

import glob
import json
import os
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from action3d.commands._hydra import typed_config
from action3d.engine import train as train_mod
from action3d.engine.monitor import RunLog
from action3d.engine.trackers import TensorBoardTracker, Tracker
from action3d.engine.train import Trainer
from action3d.errors import Action3dError

from conftest import SMALL, free_port


def make(tmp_path: Path, *overrides: str, name: str = "run") -> Trainer:
    return Trainer(typed_config("train", [*SMALL, *overrides]), run_dir=tmp_path / name, seed=0)


# ------------------------------------------------------------------ MLflow

@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on a free port of 127.0.0.1 with a sqlite store in tmp_path: (its URI, when it
    was started)."""
    pytest.importorskip("mlflow")
    started, port = time.time(), free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers
    log = open(tmp_path / "mlflow-server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db", "--default-artifact-root", str(tmp_path / "art")],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(uri + "/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    output = (tmp_path / "mlflow-server.log").read_text()
                    raise AssertionError(f"mlflow server did not start:\n{output}") from None
                time.sleep(0.25)
        yield uri, started
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_two_epochs_against_a_real_mlflow_server_are_read_back_through_its_client(tmp_path, cache_dir, mlflow_server,
                                                                                monkeypatch):
    """The composed config as params, every metric with its step, the hparams, best.pt and
    summary.json as artifacts, the run named after its directory in MLFLOW_EXPERIMENT_NAME;
    server start, training and reading back within 90 s."""
    from mlflow.tracking import MlflowClient

    uri, started = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "action3d-test")
    summary = make(tmp_path, "trainer.loggers=[tensorboard,mlflow]", name="my_run").fit()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("action3d-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "my_run" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["optim.lr"] == "0.04" and params["data.batch_size"] == "4" and params["model.num_classes"] == "8"
    assert params["trainer.loggers"] == "['tensorboard', 'mlflow']"
    top1 = client.get_metric_history(run.info.run_id, "val/top1")
    assert [m.step for m in top1] == [4, 8]                                     # one per epoch
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 8   # trainer.log_every=1
    assert run.data.metrics["hparam/best_top1"] == pytest.approx(summary["best_value"])
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["best.pt", "summary.json"]
    assert json.loads((tmp_path / "my_run/trackers.json").read_text())["mlflow"] == run.info.run_id
    assert list((tmp_path / "my_run/tb").glob("events.out.tfevents.*"))       # TensorBoard as well
    assert time.time() - started < 90


def test_an_unreachable_mlflow_server_stops_the_run_before_training_in_one_line(tmp_path, cache_dir, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")   # nothing listens there
    started = time.time()
    with pytest.raises(Action3dError) as err:
        make(tmp_path, "trainer.loggers=[mlflow]")
    message = str(err.value)
    assert message.startswith("trainer.loggers: mlflow could not start a run at http://127.0.0.1:")
    assert "\n" not in message
    assert time.time() - started < 30 and not (tmp_path / "run/last.pt").exists()


# ------------------------------------------------------------------ W&B

def wandb_records(path: Path):
    """The records of a run's transaction log (run-ID.wandb: LevelDB-style 32 KiB blocks of
    checksum, length, type and a `Record` protobuf): what `wandb sync` would upload."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, chunk = 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):
            pos += left
            continue
        chunk, pos = chunk + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):                                   # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def test_wandb_offline_writes_the_config_and_the_summary(tmp_path, cache_dir, monkeypatch):
    pytest.importorskip("wandb")
    for key, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
                       "WANDB_PROJECT": "action3d-test"}.items():
        monkeypatch.setenv(key, value)
    summary = make(tmp_path, "trainer.loggers=[wandb]", "trainer.max_epochs=1").fit()
    (run_dir,) = glob.glob(str(tmp_path / "wandb/offline-run-*"))
    files = Path(run_dir) / "files"
    config = yaml.safe_load((files / "config.yaml").read_text())
    assert config["optim"]["value"]["lr"] == 0.04 and config["trainer"]["value"]["loggers"] == ["wandb"]
    logged = json.loads((files / "wandb-summary.json").read_text())
    assert logged["hparam/best_top1"] == pytest.approx(summary["best_value"]) and "val/top1" in logged
    # and wandb itself holds them: its transaction log has the config, the history and the summary
    records = list(wandb_records(next(Path(run_dir).glob("run-*.wandb"))))
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run.display_name == "run" and run.project == "action3d-test"
    assert json.loads({u.key: u.value_json for u in run.config.update}["optim"])["lr"] == 0.04
    history = [{i.nested_key[0] if i.nested_key else i.key: i.value_json for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    assert sum("val/top1" in h for h in history) == 1 and sum("train/loss" in h for h in history) == 4
    assert any(u.key == "hparam/best_top1" or list(u.nested_key) == ["hparam/best_top1"]
               for r in records if r.WhichOneof("record_type") == "summary" for u in r.summary.update)


# ------------------------------------------------------------------ failures, rank 0 only

class FailsOnTheThirdPoint(TensorBoardTracker):
    points = 0

    def scalars(self, step, values):
        FailsOnTheThirdPoint.points += 1
        if FailsOnTheThirdPoint.points == 3:
            raise ConnectionError("the tracking server went away")
        super().scalars(step, values)


def test_a_tracker_failing_mid_run_is_warned_about_once_and_training_goes_on(tmp_path, cache_dir, monkeypatch,
                                                                              caplog):
    monkeypatch.setitem(train_mod.TRACKERS, "tensorboard", FailsOnTheThirdPoint)
    FailsOnTheThirdPoint.points = 0
    summary = make(tmp_path).fit()
    warnings = [r.getMessage() for r in caplog.records if "trainer.loggers" in r.getMessage()]
    assert warnings == ["trainer.loggers: tensorboard failed (ConnectionError: the tracking server went away); "
                        "it is off for the rest of this run"]
    assert summary["status"] == "finished" and summary["steps"] == 8
    assert FailsOnTheThirdPoint.points == 3                                     # never called again
    assert len([line for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()
                if "train/loss" in line]) == 8                                  # metrics.jsonl goes on


class Refuses(Tracker):
    name = "tensorboard"

    def start(self, run_dir, config, resume_id):
        raise AssertionError("a rank other than 0 started a tracker")


def test_only_rank_0_starts_trackers_and_an_empty_list_keeps_metrics_jsonl_only(tmp_path, cache_dir):
    quiet = RunLog(tmp_path / "rank1", enabled=False, trackers=[Refuses()])
    quiet.scalars(1, {"train/loss": 1.0})
    quiet.close()
    assert not (tmp_path / "rank1").exists()
    make(tmp_path, "trainer.loggers=[]", "trainer.max_steps=1").fit()
    assert (tmp_path / "run/metrics.jsonl").is_file() and not (tmp_path / "run/tb").exists()
