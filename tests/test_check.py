"""`data check`: every video decoded; bad and too-short files reported, good ones kept in order."""
import numpy as np
import pytest

from action3d.data.check import check_dataset, inspect_video
from action3d.data.video_writer import write_video


def grey_video(path, frames):
    levels = (np.arange(frames) * 7 % 200 + 20).astype(np.uint8)
    write_video(path, np.broadcast_to(levels[:, None, None, None], (frames, 32, 32, 3)).copy(), gop=4)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    grey_video(root / "long.mp4", 24)
    grey_video(root / "short.mp4", 5)
    grey_video(root / "long2.mp4", 20)
    data = (root / "long.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    (root / "noise.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    samples = [(str(root / name), label) for label, name in
               enumerate(["long.mp4", "short.mp4", "cut.mp4", "noise.mp4", "missing.mp4", "long2.mp4"])]
    return root, samples


@pytest.mark.timeout(120)  # subprocesses: a hang fails the test instead of the suite
@pytest.mark.parametrize("workers", [1, 2])
def test_check_sorts_good_short_and_bad(collection, workers):
    root, samples = collection
    report = check_dataset(samples, root=str(root), min_frames=16, workers=workers, progress=False)
    assert report.good == [samples[0], samples[5]]
    assert report.short == [(samples[1][0], 1, 5)]
    assert [path for path, _ in report.bad] == [samples[2][0], samples[3][0], samples[4][0]]
    assert report.total == len(samples)
    text = report.summary()
    assert text.splitlines()[0].startswith(f"6 videos under {root}: 2 ok, 3 unreadable, 1 shorter than 16")
    assert "missing.mp4: no such file" in text and "short.mp4: 5 frames" in text


def test_inspect_counts_decodable_frames(collection):
    root, _ = collection
    assert inspect_video(str(root / "long.mp4")) == (24, None)
    frames, reason = inspect_video(str(root / "cut.mp4"))
    assert reason is not None and str(root / "cut.mp4") in reason and frames < 24
