"""`make demo` runs `action3d train recipe=demo`: the recipe composes over the defaults and the
command line still wins over it."""
from pathlib import Path

from action3d.commands._hydra import compose_config

ROOT = Path(__file__).resolve().parents[1]


def test_demo_recipe_sets_the_fast_schedule_over_the_defaults():
    plain, demo = compose_config("train", []), compose_config("train", ["recipe=demo"])
    assert (plain.optim.name, demo.optim.name) == ("sgd", "adamw")
    assert demo.optim.lr == 4e-3 and demo.data.batch_size == 16 and demo.model.dropout == 0.3
    assert list(demo.data.crop_area_range) == [0.5, 1.0]
    assert (demo.trainer.max_epochs, demo.trainer.val_every) == (24, 6)
    assert list(demo.model.conv1_kernel) == [3, 5, 5] and demo.data.num_workers == 0
    assert demo.trainer.precision == plain.trainer.precision == "auto"
    assert demo.model.name == plain.model.name == "tiny" and demo.data.name == "synthetic"
    assert compose_config("train", ["recipe=demo", "trainer.max_epochs=3"]).trainer.max_epochs == 3


def test_make_demo_trains_with_the_demo_recipe():
    demo_lines = [line for line in (ROOT / "Makefile").read_text().splitlines() if "action3d train" in line]
    assert demo_lines and all("recipe=demo" in line for line in demo_lines)
