"""`action3d embed`: pooled backbone features per video or window, as .npy files plus an index CSV."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_support import small_slowfast, trained_checkpoint

from action3d.cli import main as cli_main
from action3d.commands import embed as embed_command
from action3d.commands._checkpoint import load_trained as load_trained_model
from action3d.commands._hydra import compose_config
from action3d.data.synthetic import write_sequence
from action3d.engine.embed import embed_video, embed_videos, pooled_features


@pytest.fixture(scope="module")
def trained(cache_dir):
    return load_trained_model(trained_checkpoint(cache_dir), torch.device("cpu"))


def _split(trained, split: str) -> Path:
    return Path(trained.config.data.root) / split


def _read_index(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_same_video_twice_gives_identical_features(trained):
    video = sorted((_split(trained, "val") / "move_left").glob("*.mp4"))[0]
    first, spans = embed_video(trained, str(video), num_clips=2, progress=False)
    second, _ = embed_video(trained, str(video), num_clips=2, progress=False)
    assert first.shape == (1, trained.model.cls_head.in_channels) and first.dtype == np.float32
    assert np.array_equal(first, second) and spans == [(0.0, 16 / 25)]


def test_features_are_the_pooled_input_of_the_classifier(trained):
    """Feeding the embedding to the classifier gives the model's logits (eval mode: no dropout)."""
    video = sorted((_split(trained, "val") / "move_down").glob("*.mp4"))[0]
    features, _ = embed_video(trained, str(video), progress=False)
    from action3d.engine.predict import predict

    [expected] = predict(trained, [str(video)])
    logits = trained.model.cls_head.fc_cls(torch.from_numpy(features))
    assert np.allclose(logits.softmax(-1)[0].detach().numpy(), expected["scores"], atol=1e-5)


def test_slowfast_features_hold_both_pathways():
    model = small_slowfast()
    with torch.no_grad():
        features = pooled_features(model, torch.randn(2, 3, 8, 32, 32))
    assert features.shape == (2, sum(model.backbone.feat_dims))


@pytest.mark.slow
def test_a_linear_probe_on_the_embeddings_beats_twice_chance(trained, tmp_path):
    """Embed the synthetic training and validation sets, fit a logistic regression on the training
    embeddings, score it on the validation ones."""
    data = {}
    for split in ("train", "val"):
        videos = sorted(_split(trained, split).rglob("*.mp4"))
        summary = embed_videos(trained, videos, tmp_path / split, root=_split(trained, split), progress=False)
        assert summary.errors == [] and summary.rows == len(videos)
        rows = _read_index(summary.index)
        features = np.stack([np.load(tmp_path / split / row["file"])[int(row["row"])] for row in rows])
        labels = [trained.classes.index(Path(row["path"]).parent.name) for row in rows]
        data[split] = torch.from_numpy(features), torch.tensor(labels)
    (x, y), (x_val, y_val) = data["train"], data["val"]
    mean, std = x.mean(0), x.std(0) + 1e-6
    probe = torch.nn.Linear(x.shape[1], len(trained.classes))
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=200)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe((x - mean) / std), y) + 1e-3 * probe.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    accuracy = (probe((x_val - mean) / std).argmax(1) == y_val).float().mean().item()
    chance = 1 / len(trained.classes)
    assert accuracy >= 2 * chance, accuracy


def test_embed_command_writes_npy_per_window_and_names_a_broken_file(trained, tmp_path, capsys):
    folder = tmp_path / "videos"
    (folder / "sub").mkdir(parents=True)
    write_sequence(folder / "sub" / "long.mp4", ["move_right", "move_up"], clips_per_class=2, size=64)   # 2.56 s
    (folder / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "emb"
    cfg = compose_config("embed", [f"ckpt={trained.path}", f"video={folder}", f"out={out}", "window=1", "stride=0.6"])
    with pytest.raises(SystemExit) as exit_info:
        embed_command.run(cfg)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("action3d embed: error:") and "broken.mp4" in errors[0]
    assert "embedded     1 of 2 videos: 4 rows" in captured.out
    features = np.load(out / "sub" / "long.mp4.npy")
    rows = _read_index(out / "index.csv")
    assert features.shape[0] == len(rows) == 4                      # windows at 0, 0.6, 1.2 and the tail's 1.56
    assert [(float(r["start"]), float(r["end"])) for r in rows] == [(0, 1), (0.6, 1.6), (1.2, 2.2), (1.56, 2.56)]
    assert {r["file"] for r in rows} == {"sub/long.mp4.npy"} and [int(r["row"]) for r in rows] == [0, 1, 2, 3]


@pytest.mark.parametrize("command", ["embed", "explain"])
def test_keys_that_cannot_apply_are_refused_in_one_line(trained, tmp_path, capsys, command):
    args = [command, f"ckpt={trained.path}", f"video={trained.path}", f"out={tmp_path / 'out'}"]
    for key in ("eval.batch_size=2", "data.num_workers=4"):
        assert cli_main([*args, key]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"action3d {command}: error: {key.split('=')[0]} does not apply"), err
    assert not (tmp_path / "out").exists()
