"""The synthetic dataset: deterministic for a seed, labels that mean what they say, safe caching."""
import hashlib
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch

from action3d.config import DataConfig, SyntheticConfig
from action3d.data.annotations import load_split, read_list_file
from action3d.data.decode import read_all_frames
from action3d.data.synthetic import (
    CLASSES,
    ensure_synthetic,
    make_synthetic,
    motion_path,
    render_video,
    synthetic_folder_name,
)
from action3d.errors import Action3dError

SMALL = dict(num_classes=8, train_per_class=1, val_per_class=1, num_frames=8, size=32)


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.mp4"))}


def test_layout_lists_and_classes(tmp_path):
    out = make_synthetic(tmp_path / "s", SyntheticConfig(**SMALL, seed=0), progress=False)
    assert (out / "classes.txt").read_text().split() == list(CLASSES[:8])
    train = read_list_file(out / "train.txt", root=out)
    assert [label for _, label in train] == list(range(8))
    assert all(Path(path).parent.name == CLASSES[label] for path, label in train)
    frames = read_all_frames(train[0][0])
    assert frames.shape == (3, 8, 32, 32)


def test_deterministic_for_a_seed_and_different_for_another(tmp_path):
    a = make_synthetic(tmp_path / "a", SyntheticConfig(**SMALL, seed=3), progress=False)
    b = make_synthetic(tmp_path / "b", SyntheticConfig(**SMALL, seed=3), progress=False)
    c = make_synthetic(tmp_path / "c", SyntheticConfig(**SMALL, seed=4), progress=False)
    assert digest(a) == digest(b)  # byte-identical files
    name = "train/rotate_cw/rotate_cw_0000.mp4"
    assert torch.equal(read_all_frames(a / name), read_all_frames(b / name))
    assert not torch.equal(read_all_frames(a / name), read_all_frames(c / name))
    assert sum(digest(a)[k] != digest(c)[k] for k in digest(a)) == len(digest(a))


def test_motion_defines_the_class():
    rng = np.random.default_rng(0)
    steps = {}
    for name in ("move_right", "move_left", "move_down", "move_up", "rotate_cw", "rotate_ccw", "grow", "shrink"):
        center, radius, angle = motion_path(name, rng, num_frames=16, size=64)
        steps[name] = (np.diff(center, axis=0).mean(axis=0), np.diff(radius).mean(), np.diff(angle).mean())
    assert steps["move_right"][0][0] > 1.5 and abs(steps["move_right"][0][1]) < 1e-9
    assert steps["move_left"][0][0] < -1.5 and steps["move_up"][0][1] < -1.5 and steps["move_down"][0][1] > 1.5
    assert steps["rotate_cw"][2] > 0.1 and steps["rotate_ccw"][2] < -0.1  # radians per frame
    assert steps["grow"][1] > 0.2 and steps["shrink"][1] < -0.2
    assert all(abs(steps[n][0]).max() < 0.5 for n in ("rotate_cw", "rotate_ccw", "grow", "shrink"))


@pytest.mark.parametrize("name, axis, sign", [("move_right", 1, 1), ("move_left", 1, -1),
                                               ("move_down", 0, 1), ("move_up", 0, -1)])
def test_the_changing_pixels_travel_the_class_direction(name, axis, sign):
    frames = render_video(name, np.random.default_rng(1), num_frames=8, size=64).astype(int)
    change = np.abs(np.diff(frames, axis=0)).sum(axis=-1) > 60  # (T-1, H, W): only the movers change
    position = [np.nonzero(c)[axis].mean() for c in change]     # mean row or column of the change
    slope = np.polyfit(np.arange(len(position)), position, 1)[0]  # pixels per frame
    assert sign * slope > 1.0


def test_ensure_synthetic_generates_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTION3D_CACHE", str(tmp_path / "cache"))
    cfg = DataConfig(synthetic=SyntheticConfig(**SMALL))
    filled = ensure_synthetic(cfg, progress=False)
    folder = tmp_path / "cache" / synthetic_folder_name(SyntheticConfig(**SMALL))
    assert filled.root == str(folder) and filled.train_list == str(folder / "train.txt")
    stamp = (folder / "classes.txt").stat().st_mtime_ns
    assert ensure_synthetic(cfg, progress=False).root == str(folder)
    assert (folder / "classes.txt").stat().st_mtime_ns == stamp  # not regenerated
    with pytest.raises(Action3dError, match="not generated yet"):  # resolved once, by resolve_data
        load_split(cfg, "val")
    samples, classes = load_split(filled, "val")
    assert len(samples) == 8 and classes == list(CLASSES[:8])


def _ensure_in_child(cache: str, queue) -> None:
    import os

    os.environ["ACTION3D_CACHE"] = cache
    cfg = DataConfig(synthetic=SyntheticConfig(**SMALL, seed=9))
    queue.put(ensure_synthetic(cfg, progress=False).root)


@pytest.mark.timeout(120)  # subprocesses: a hang fails the test instead of the suite
def test_two_processes_at_once(tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_ensure_in_child, args=(str(tmp_path), queue)) for _ in range(2)]
    for w in workers:
        w.start()
    roots = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert all(w.exitcode == 0 for w in workers) and roots[0] == roots[1]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [Path(roots[0]).name]
    assert len(read_list_file(Path(roots[0]) / "train.txt")) == 8


def test_bad_settings(tmp_path):
    with pytest.raises(Action3dError, match="num_classes=13"):
        make_synthetic(tmp_path, SyntheticConfig(num_classes=13), progress=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("x")
    with pytest.raises(Action3dError, match="holds no complete synthetic set"):
        ensure_synthetic(DataConfig(root=str(tmp_path / "taken"), synthetic=SyntheticConfig(**SMALL)), progress=False)
