"""The trainer's options, each shown in-process on the small synthetic set (no subprocess imports).

Every test builds the config the command line would (`compose_config("train", overrides)`) and
runs the library's `Trainer` with it, so a key's path from the config to its effect is the one a
user runs.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from action3d.cli import main
from action3d.commands._hydra import compose_config, typed_config
from action3d.config import runtime as rules
from action3d.engine import loss as loss_mod
from action3d.engine import precision as precision_mod
from action3d.engine import train as train_mod
from action3d.engine.train import Trainer
from action3d.errors import Action3dError

from conftest import SMALL


def make(tmp_path: Path, *overrides: str, name: str = "run", seed: int = 0) -> Trainer:
    cfg = typed_config("train", [*SMALL, *overrides])
    return Trainer(cfg, run_dir=tmp_path / name, seed=seed)


def model_weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_equal_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def logged(run_dir: Path, key: str) -> list:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row[key] for row in rows if key in row]


# ---------------------------------------------------------------- data.num_clips in training

def test_num_clips_trains_k_independent_clips_per_video_with_the_same_steps(tmp_path, cache_dir):
    one = make(tmp_path, "trainer.max_epochs=1", name="k1")
    two = make(tmp_path, "trainer.max_epochs=1", "data.num_clips=2", name="k2")
    assert two.steps_per_epoch == one.steps_per_epoch == 4          # data.batch_size counts videos
    clips, label, _ = two.train_set[(0, 3)]
    assert clips.shape == (2, 3, 4, 32, 32) and not torch.equal(clips[0], clips[1])  # own start, crop
    seen = []
    two.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    summary = two.fit()
    assert summary["status"] == "finished" and summary["best_top1"] is not None
    assert set(seen[:4]) == {8}                                       # 4 videos x 2 clips per step
    assert two.val_set[0][0].shape == (2, 3, 4, 32, 32)               # validation averages 2 views


def test_seed_reaches_every_samples_augmentation(tmp_path, cache_dir):
    a, b, c = (make(tmp_path, name=f"s{i}", seed=seed) for i, seed in enumerate((0, 0, 1)))
    same = [torch.equal(a.train_set[(0, i)][0], b.train_set[(0, i)][0]) for i in range(6)]
    other = [torch.equal(a.train_set[(0, i)][0], c.train_set[(0, i)][0]) for i in range(6)]
    assert all(same) and not any(other)


def test_accumulation_leftover_does_not_leak_into_the_next_epoch(tmp_path, cache_dir):
    """4 batches per epoch, accum_steps=3: one step per epoch, the 4th micro-batch is not run.
    A run stopped at the epoch boundary and resumed ends with the uninterrupted run's weights."""
    common = ["trainer.accum_steps=3", "sched=constant", "sched.warmup_epochs=0", "trainer.precise_bn_batches=0"]
    full = make(tmp_path, *common, "trainer.max_epochs=2", name="full")
    assert (full.steps_per_epoch, full.batches_per_epoch) == (1, 3)
    full.fit()
    make(tmp_path, *common, "trainer.max_epochs=1", name="cut").fit()
    make(tmp_path, *common, "trainer.max_epochs=2", "trainer.resume=auto", name="cut").fit()
    assert_equal_weights(model_weights(tmp_path / "full/last.pt"), model_weights(tmp_path / "cut/last.pt"))


def test_accum_steps_above_the_epoch_is_one_line(tmp_path, cache_dir):
    with pytest.raises(Action3dError, match="trainer.accum_steps=5 is more than the 4 batches"):
        make(tmp_path, "trainer.accum_steps=5")


# ---------------------------------------------------------------- refusals before anything runs

@pytest.mark.parametrize("override, words", [
    ("trainer.sync_bn=true", "trainer.sync_bn does not apply here: it synchronises BatchNorm across DDP"),
    ("optim.momentum=-1.0", "optim.momentum=-1.0 is not allowed: must be in [0, 1]"),
    ("optim.weight_decay=-0.1", "optim.weight_decay=-0.1 is not allowed"),
    ("optim=adamw optim.betas=[0.9,1.5]", "optim.betas=[0.9,1.5] is not allowed"),
    ("sched.warmup_start_factor=0", "sched.warmup_start_factor=0.0 is not allowed"),
    ("trainer.grad_clip=-1", "trainer.grad_clip=-1.0 is not allowed"),
    ("trainer.ckpt_every_minutes=-5", "trainer.ckpt_every_minutes=-5.0 is not allowed"),
    ("trainer.device=cuda", "trainer.device=cuda but no CUDA device"),
])
def test_values_that_would_fail_inside_a_library_are_refused_first(override, words, tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", *override.split(), "hydra.run.dir=run"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_sync_bn_under_torchrun_on_cpu_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")        # what torchrun sets; prevalidate needs no process group
    assert main(["train", "trainer.sync_bn=true", "hydra.run.dir=run"]) == 2
    assert "trainer.sync_bn=true needs CUDA" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sync_bn_on_cpu_is_refused_by_the_library_too(tmp_path, cache_dir):
    """The command line refuses trainer.sync_bn in one process; a Python caller that builds the
    config without that check gets the library's own refusal, before anything is written."""
    cfg = typed_config("train", [*SMALL, "trainer.sync_bn=true"], check=False)
    with pytest.raises(Action3dError, match="trainer.sync_bn=true needs CUDA"):
        Trainer(cfg, run_dir=tmp_path / "run", seed=0)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- precision

@pytest.mark.parametrize("flags, chosen", [({"avx512_bf16"}, "bf16"), ({"amx_bf16"}, "bf16"), ({"avx2"}, "32")])
def test_auto_precision_follows_native_bf16_on_cpu(flags, chosen, monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(rules, "cpu_flags", lambda: set(flags))
    picked, why = precision_mod.resolve_precision("auto", torch.device("cpu"))
    assert picked == chosen and "trainer.precision=auto chose" in why
    assert precision_mod.resolve_precision("32", torch.device("cpu"))[0] == "32"   # an explicit choice stays


@pytest.mark.parametrize("cap, chosen", [("AVX2", "32"), ("avx512_core", "32"), ("AVX512_CORE_BF16", "bf16"),
                                         ("AVX512_CORE_AMX", "bf16")])
def test_auto_precision_honours_a_onednn_isa_cap(cap, chosen, monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX2 makes an AVX512-BF16 CPU run as one without it: bf16 would be
    emulated, so auto picks fp32 (as `make test-learned-avx2` runs)."""
    monkeypatch.setattr(rules, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert precision_mod.resolve_precision("auto", torch.device("cpu"))[0] == chosen


def test_auto_precision_on_cuda_asks_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert precision_mod.resolve_precision("auto", torch.device("cuda"))[0] == "32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision_mod.resolve_precision("auto", torch.device("cuda"))[0] == "bf16"


def test_the_run_log_names_the_precision_and_why(tmp_path, cache_dir, caplog, monkeypatch):
    monkeypatch.setattr(rules, "cpu_flags", lambda: {"avx2"})
    with caplog.at_level(logging.INFO, logger="action3d"):
        trainer = make(tmp_path, "trainer.precision=auto")
    assert trainer.precision == "32"
    assert "trainer.precision=auto chose fp32: this CPU has no avx512_bf16/amx_bf16" in caplog.text


@pytest.mark.parametrize("precision", ["bf16", "16"])
def test_mixed_precision_trains_on_the_cpu_and_the_loss_goes_down(precision, tmp_path, cache_dir):
    trainer = make(tmp_path, f"trainer.precision={precision}", "trainer.max_epochs=4", "trainer.log_every=1",
                   "data.synthetic.num_classes=2", "data.synthetic.train_per_class=8")
    assert trainer.precision == precision and trainer.scaler.is_enabled() == (precision == "16")
    trainer.fit()
    losses = logged(tmp_path / "run", "train/loss")
    assert len(losses) == 16 and sum(losses[-4:]) < sum(losses[:4])


def test_fp16_on_a_cpu_without_native_fp16_warns(tmp_path, cache_dir, caplog, monkeypatch):
    monkeypatch.setattr(rules, "cpu_flags", lambda: {"avx2"})
    with caplog.at_level(logging.WARNING, logger="action3d"):
        make(tmp_path, "trainer.precision=16")
    assert "trainer.precision=16 on a CPU without native fp16" in caplog.text


# ---------------------------------------------------------------- host syncs, finiteness

def test_a_micro_batch_makes_no_host_sync(tmp_path, cache_dir, monkeypatch):
    trainer = make(tmp_path, "trainer.log_every=1000")
    batches = iter(trainer.loader)
    monkeypatch.setattr(torch.Tensor, "item", lambda self: pytest.fail("a micro-batch read a value back"))
    for _ in range(3):
        trainer.train_step(next(batches))
    assert trainer.step == 3


def _poison_from_step(trainer: Trainer, step: int) -> None:
    """Non-finite logits from optimiser step `step` on (1-based)."""
    def hook(module, args, output):
        return output * float("nan") if trainer.step + 1 >= step else output
    trainer.model.register_forward_hook(hook)


def test_non_finite_loss_stops_within_log_every_steps_naming_the_step(tmp_path, cache_dir):
    trainer = make(tmp_path, "trainer.log_every=2", "trainer.max_epochs=3")
    _poison_from_step(trainer, 3)
    with pytest.raises(Action3dError, match=r"non-finite loss at step 3 \(epoch 1\)"):
        trainer.fit()
    assert trainer.step == 4                                # noticed at the next log point


def test_no_checkpoint_stores_a_non_finite_state(tmp_path, cache_dir):
    make(tmp_path, "trainer.max_epochs=1").fit()
    before = (tmp_path / "run/last.pt").read_bytes()
    resumed = make(tmp_path, "trainer.max_epochs=2", "trainer.resume=auto", "trainer.log_every=1000")
    _poison_from_step(resumed, 6)
    with pytest.raises(Action3dError, match="non-finite loss at step 6 .* the last good checkpoint is"):
        resumed.fit()
    assert (tmp_path / "run/last.pt").read_bytes() == before


# ---------------------------------------------------------------- checkpoints and validation

def test_ckpt_every_minutes_writes_last_pt_in_the_middle_of_an_epoch(tmp_path, cache_dir, monkeypatch):
    saved = []
    real = train_mod.save_checkpoint
    monkeypatch.setattr(train_mod, "save_checkpoint",
                        lambda state, path: (saved.append((Path(path).name, state["batch_in_epoch"])),
                                             real(state, path)))
    make(tmp_path, "trainer.max_epochs=1", "trainer.ckpt_every_minutes=1e-9").fit()
    assert ("last.pt", 2) in saved and ("last.pt", 3) in saved      # at step boundaries mid-epoch
    off = []
    monkeypatch.setattr(train_mod, "save_checkpoint", lambda state, path: off.append(state["batch_in_epoch"]))
    make(tmp_path, "trainer.max_epochs=1", "trainer.ckpt_every_minutes=0", name="off").fit()
    assert off and set(off) == {0}                                  # only the epoch's end


def test_ckpt_every_keeps_epoch_files(tmp_path, cache_dir):
    make(tmp_path, "trainer.max_epochs=3", "trainer.ckpt_every=2").fit()
    assert sorted(p.name for p in (tmp_path / "run").glob("epoch_*.pt")) == ["epoch_2.pt"]


def test_precise_bn_and_validation_run_only_when_validation_is_due(tmp_path, cache_dir, monkeypatch):
    calls = []
    real = train_mod.recompute_bn_stats
    monkeypatch.setattr(train_mod, "recompute_bn_stats", lambda model, batches: calls.append(1) or real(model, batches))
    trainer = make(tmp_path, "trainer.max_epochs=3", "trainer.val_every=2", "trainer.precise_bn_batches=2")
    trainer.fit()
    assert len(calls) == 2                                          # epochs 2 and 3 (the last)
    assert len(logged(tmp_path / "run", "val/top1")) == 2


def test_validation_schedule_does_not_change_the_trained_weights(tmp_path, cache_dir):
    """Precise BN runs train-mode forwards (dropout draws random masks): validating after every
    epoch or only after the last must end with the same weights and statistics."""
    common = ["trainer.max_epochs=2", "model.dropout=0.5", "trainer.precise_bn_batches=2"]
    make(tmp_path, *common, "trainer.val_every=1", name="every").fit()
    make(tmp_path, *common, "trainer.val_every=2", name="last").fit()
    assert_equal_weights(model_weights(tmp_path / "every/last.pt"), model_weights(tmp_path / "last/last.pt"))


def test_max_steps_validates_before_it_ends_without_changing_last_pt(tmp_path, cache_dir):
    cut = make(tmp_path, "trainer.max_steps=3", "trainer.max_epochs=2", name="cut")
    summary = cut.fit()
    assert summary["status"] == "max_steps" and summary["best_top1"] is not None
    assert (tmp_path / "cut/best.pt").is_file()
    make(tmp_path, "trainer.max_epochs=2", name="full").fit()
    make(tmp_path, "trainer.max_epochs=2", "trainer.resume=auto", name="cut").fit()
    assert_equal_weights(model_weights(tmp_path / "full/last.pt"), model_weights(tmp_path / "cut/last.pt"))


def test_channels_last_off_gives_the_same_logits(tmp_path, cache_dir):
    from action3d.commands._checkpoint import load_trained as load_trained_model
    from action3d.engine.inference import score_views

    make(tmp_path, "trainer.max_epochs=1").fit()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        on = score_views(load_trained_model(tmp_path / "run/last.pt", torch.device("cpu")).model, x, "score")[0]
        off = score_views(load_trained_model(tmp_path / "run/last.pt", torch.device("cpu"), channels_last=False).model,
                          x, "score", channels_last=False)[0]
    assert torch.allclose(on, off, rtol=1e-5, atol=1e-6)
    batch = next(iter(make(tmp_path, name="cl").loader))
    assert make(tmp_path, "trainer.channels_last=false", name="cf")._device_clips(batch)[0].is_contiguous()
    assert make(tmp_path, name="cl2")._device_clips(batch)[0].is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.slow
def test_compile_trains_three_steps_to_the_eager_loss(tmp_path, cache_dir):
    # No dropout: compiled code draws its masks from another random generator than eager mode.
    common = ["trainer.max_steps=3", "trainer.log_every=1", "trainer.precision=32", "trainer.precise_bn_batches=0",
              "model.dropout=0"]
    make(tmp_path, *common, name="eager").fit()
    make(tmp_path, *common, "trainer.compile=true", name="compiled").fit()
    eager, compiled = logged(tmp_path / "eager", "train/loss"), logged(tmp_path / "compiled", "train/loss")
    assert len(eager) == len(compiled) == 3
    assert compiled == pytest.approx(eager, rel=1e-4)               # fused kernels round differently


# ---------------------------------------------------------------- the remaining trainer keys

def test_the_train_command_passes_trainer_seed_to_the_trainer(tmp_path, cache_dir, monkeypatch):
    from action3d.commands import train as train_command

    seen = {}

    class Spy:
        def __init__(self, cfg, **kwargs):
            seen.update(kwargs)

        def fit(self):
            return {"status": "finished", "best_top1": None, "best_epoch": -1, "checkpoint": "-"}

    monkeypatch.setattr(train_mod, "Trainer", Spy)
    monkeypatch.chdir(tmp_path)
    train_command.run(compose_config("train", [*SMALL, "trainer.seed=7"]))
    assert seen["seed"] == 7


def test_grad_clip_limits_the_gradient_norm_of_each_step(tmp_path, cache_dir, monkeypatch):
    norms = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        total = real(parameters, max_norm, *args, **kwargs)
        norms.append((float(total), float(torch.norm(torch.stack([p.grad.norm() for p in parameters])))))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    make(tmp_path, "trainer.grad_clip=0.05", "trainer.max_steps=3", "trainer.precision=32").fit()
    assert len(norms) == 3 and all(after <= 0.05 + 1e-6 < before for before, after in norms)


def test_label_smoothing_reaches_the_loss(tmp_path, cache_dir, monkeypatch):
    seen = []
    real = loss_mod.F.cross_entropy
    monkeypatch.setattr(loss_mod.F, "cross_entropy",
                        lambda *args, **kwargs: seen.append(kwargs["label_smoothing"]) or real(*args, **kwargs))
    make(tmp_path, "trainer.label_smoothing=0.3", "trainer.max_steps=1").fit()
    assert seen and set(seen) == {0.3}


def test_log_every_sets_the_logged_points(tmp_path, cache_dir):
    make(tmp_path, "trainer.log_every=2", "trainer.max_epochs=1").fit()
    assert len(logged(tmp_path / "run", "train/loss")) == 2           # steps 2 and 4 of 4


@pytest.mark.parametrize("threshold, advised", [(0.0, True), (1.0, False)])
def test_data_wait_warn_is_the_threshold_of_the_advice(threshold, advised, tmp_path, cache_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="action3d"):
        make(tmp_path, f"trainer.data_wait_warn={threshold}", "trainer.max_epochs=1").fit()
    assert ("the model waited for data" in caplog.text) == advised


def test_the_log_names_the_dataset_and_its_size(tmp_path, cache_dir, caplog):
    with caplog.at_level(logging.INFO, logger="action3d"):
        make(tmp_path, "data.name=my_motions")
    assert "data: my_motions (data.format=synthetic), 16 training videos, 8 validation videos, 8 classes" in caplog.text
