"""`action3d export`: ONNX and TorchScript files that take uint8 clips, match PyTorch, and say how to feed them."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from deploy_support import preset_checkpoint

from action3d.cli import main as cli_main
from action3d.commands import export as export_command
from action3d.commands._checkpoint import load_trained as load_trained_model
from action3d.commands._hydra import compose_config
from action3d.engine.export import PARITY_TOLERANCE, deploy_model, export_model, run_exported, sidecar_path

# Small inputs: 4-frame 32-px clips (r3d_18 halves T three times: 4 -> 1).
SMALL_CLIP = ["data.clip_len=4", "data.frame_interval=2", "data.short_side=32", "data.crop_size=32"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export-ckpts")
    return {
        # "trained" in bf16 (config and stored weights): the export must still be fp32
        "tiny": preset_checkpoint(folder / "tiny.pt", "tiny", [*SMALL_CLIP, "trainer.precision=bf16"],
                                  dtype=torch.bfloat16),
        "r3d_18": preset_checkpoint(folder / "r3d_18.pt", "r3d_18", SMALL_CLIP),
    }


def _clips(batch: int, clip_len: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 3, clip_len, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(batch))


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tiny", "r3d_18"])
@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_export_matches_pytorch_on_uint8_clips_with_any_batch_size(checkpoints, tmp_path, preset, format):
    trained = load_trained_model(checkpoints[preset], torch.device("cpu"), channels_last=False)
    out = tmp_path / f"model.{'onnx' if format == 'onnx' else 'pt'}"
    result = export_model(trained, format=format, out=out)

    assert result.max_abs_diff <= PARITY_TOLERANCE <= result.tolerance and out.stat().st_size == result.size_bytes > 0
    reference = deploy_model(load_trained_model(checkpoints[preset], torch.device("cpu"), channels_last=False),
                             trained.config.data)
    for batch in (1, 5):                                   # the batch dimension is dynamic
        clips = _clips(batch)
        logits, probs = run_exported(out, format=format, clips=clips)
        with torch.no_grad():
            expected, _ = reference(clips)                 # normalisation happens inside the exported model
        assert logits.shape == probs.shape == (batch, 5)
        assert np.abs(logits - expected.numpy()).max() <= PARITY_TOLERANCE
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert np.allclose(probs, torch.from_numpy(logits).softmax(-1).numpy(), atol=1e-6)

    info = json.loads(sidecar_path(out).read_text())
    assert info["model"] == preset and info["classes"] == [f"class_{i}" for i in range(5)]
    assert (info["clip_len"], info["frame_interval"], info["short_side"], info["crop_size"]) == (4, 2, 32, 32)
    assert info["input"]["dtype"] == "uint8" and info["precision"] == "fp32" and info["format"] == format
    if format == "onnx":
        import onnx

        graph = onnx.load(str(out)).graph
        assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
        assert [o.name for o in graph.output] == ["logits", "probs"]
        assert graph.input[0].type.tensor_type.shape.dim[0].dim_param          # symbolic batch
        assert {init.data_type for init in graph.initializer if init.dims} <= {onnx.TensorProto.FLOAT,
                                                                               onnx.TensorProto.INT64}
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)              # torch.jit.load's deprecation notice
            module = torch.jit.load(str(out))
        assert {p.dtype for p in module.parameters()} == {torch.float32}


@pytest.mark.slow
def test_slowfast_exports_to_both_formats(tmp_path):
    ckpt = preset_checkpoint(tmp_path / "sf.pt", "slowfast_r50",
                             ["model.stage_blocks=[1,1,1,1]", "data.clip_len=8", "data.short_side=32",
                              "data.crop_size=32"])
    trained = load_trained_model(ckpt, torch.device("cpu"), channels_last=False)
    for format in ("onnx", "torchscript"):
        result = export_model(trained, format=format, out=tmp_path / f"sf.{format}")
        assert result.max_abs_diff <= PARITY_TOLERANCE
        logits, _ = run_exported(result.path, format=format, clips=_clips(2, clip_len=8))
        assert logits.shape == (2, 5)


def test_export_command_prints_parity_and_data_overrides_reach_the_sidecar(checkpoints, tmp_path, capsys,
                                                                            monkeypatch):
    out = tmp_path / "deploy" / "tiny.pt"
    # The command merges data.* overrides given on the command line (Hydra's task overrides).
    monkeypatch.setattr("action3d.commands._hydra.task_overrides", lambda: ["data.clip_len=6"])
    cfg = compose_config("export", [f"ckpt={checkpoints['tiny']}", "format=torchscript", f"out={out}",
                                    "data.clip_len=6"])
    export_command.run(cfg)
    printed = capsys.readouterr().out
    assert "parity       max |logits - PyTorch|" in printed and "(N, 3, 6, 32, 32)" in printed
    assert f"sidecar      {out}.json" in printed
    info = json.loads((tmp_path / "deploy" / "tiny.pt.json").read_text())
    assert info["clip_len"] == 6 and info["input"]["shape"] == ["batch", 3, 6, 32, 32]
    logits, _ = run_exported(out, format="torchscript", clips=_clips(2, clip_len=6))
    assert logits.shape == (2, 5)


@pytest.mark.parametrize("args, key", [
    (["format=tflite"], "format=tflite"),
    (["ckpt=missing.pt"], "ckpt=missing.pt"),
    (["trainer.device=cpu"], "trainer"),          # export always runs fp32 on the CPU: no trainer section
    (["data.batch_size=4"], "data.batch_size does not apply here: export records the sampling"),
])
def test_bad_export_input_is_one_line_naming_the_key(checkpoints, tmp_path, capsys, args, key):
    given = {"ckpt": f"ckpt={checkpoints['tiny']}", "format": "format=onnx", "out": f"out={tmp_path / 'x.onnx'}"}
    for arg in args:
        given[arg.split("=")[0].split(".")[0]] = arg
    assert cli_main(["export", *given.values()]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"action3d export: error: {key}"), err
    assert not (tmp_path / "x.onnx").exists()
