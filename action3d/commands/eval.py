"""`action3d eval ckpt=PATH [zoo=SOURCE/NAME] [data overrides] [eval.*]`: the report of a checkpoint on a split.

An action3d checkpoint brings its model, class names and data config; `data.*` overrides given on
the command line go on top (`data=GROUP` takes another dataset whole), and `zoo=` sets only the
test protocol (`action3d.config.zoo.PROTOCOL_DATA_KEYS`, eval.protocol, views). Any other file is
a zoo's own checkpoint and needs `zoo=`: the zoo's model (its preset), data keys and class list,
the dataset's classes matched to its head by name (`action3d.data.zoo_classes`), refused in one
line before any model is built when a class is not the zoo's. Rank 0 writes report.json,
per_class.csv and confusion.png into the run directory (and eval.dump's .npz) and prints the summary.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from action3d.commands import _checkpoint, _hydra
from action3d.config import EvalCommandConfig
from action3d.errors import Action3dError


def run(cfg: EvalCommandConfig) -> Dict[str, Any]:
    cfg = _hydra.typed(cfg)  # below the edge: typed sections, never a DictConfig
    from action3d.engine import distributed as dist_utils
    from action3d.engine.checkpoint import load_checkpoint
    from action3d.engine.data import resolve_data
    from action3d.engine.evaluate import evaluate
    from action3d.engine.precision import resolve_precision
    from action3d.engine.report import summary_table, write_dump, write_report

    env = dist_utils.init_distributed(cfg.trainer.device)
    try:
        state = load_checkpoint(cfg.ckpt)   # its kind decides where the model and classes come from
        label_map = None
        if _checkpoint.is_training_checkpoint(state):
            trained = _checkpoint.load_trained(cfg.ckpt, env.device, channels_last=cfg.trainer.channels_last,
                                               state=state)
            data_cfg = _checkpoint.run_data(trained.config.data, cfg.data, _hydra.task_overrides())
            if cfg.zoo.name is not None:
                data_cfg = _checkpoint.with_protocol(data_cfg, cfg.data)
            data_cfg = resolve_data(data_cfg, env)
        else:
            trained, data_cfg, label_map = _zoo_model(cfg, state, env)
        precision, _ = resolve_precision(cfg.trainer.precision, env.device)
        result = evaluate(trained, data_cfg, split=cfg.split, env=env,
                          num_clips=cfg.eval.num_clips, num_crops=cfg.eval.num_crops, average=cfg.eval.average,
                          batch_size=cfg.eval.batch_size, precision=precision,
                          channels_last=cfg.trainer.channels_last, protocol=cfg.eval.protocol, label_map=label_map)
    finally:
        dist_utils.cleanup()
    if result is None:
        return {}
    if cfg.zoo.name is not None:
        result.report["zoo"] = cfg.zoo.name
    path = write_report(result.report, result.classes, _hydra.run_dir())
    print(summary_table(result.report))
    print(f"report: {path}", flush=True)
    if cfg.eval.dump:
        arrays = result.dump()
        print(f"dump: {write_dump(cfg.eval.dump, arrays)} ({len(arrays['videos'])} videos x "
              f"{arrays['scores'].shape[1]} classes)", flush=True)
    return result.report


def _zoo_model(cfg: EvalCommandConfig, state: Any, env) -> Tuple[Any, Any, List[int]]:
    """(the zoo preset's model with every tensor of ckpt=, the data config, dataset label -> head
    output) for a file that is no action3d checkpoint; the classes are checked first."""
    from action3d.data.zoo_classes import map_classes
    from action3d.engine.data import resolve_data, shared_index
    from action3d.engine.zoo_model import load_zoo_checkpoint

    if cfg.zoo.name is None:
        raise Action3dError(f"ckpt={cfg.ckpt} is not an action3d training checkpoint (no config/model entries); for "
                            "a zoo's own file give its preset, zoo=SOURCE/NAME (docs/zoo.md), or fine-tune it with "
                            "model.pretrained=PATH")
    data_cfg = resolve_data(cfg.data, env)
    dataset_classes = shared_index(data_cfg, cfg.split, env)["classes"]
    head, what = zoo_head_classes(cfg)
    label_map = map_classes(list(dataset_classes), head, zoo=cfg.zoo.name, what=what)
    trained = load_zoo_checkpoint(cfg.model, head, state, path=cfg.ckpt, data_cfg=data_cfg, device=env.device,
                                  channels_last=cfg.trainer.channels_last)
    return trained, data_cfg, label_map


def zoo_head_classes(cfg: EvalCommandConfig) -> Tuple[List[str], Optional[str]]:
    """The zoo head's class names in order: its offline list, else data.classes_file's (refused in
    one line without one, or with another count)."""
    from action3d.data.annotation_io import read_classes_file
    from action3d.data.zoo_classes import zoo_classes

    zoo = cfg.zoo
    if zoo.classes is not None:
        return zoo_classes(zoo.classes), zoo.classes
    if cfg.data.classes_file is None:
        raise Action3dError(f"data.classes_file: zoo={zoo.name} has no class list offline; give data.classes_file=FILE "
                            f"naming its {zoo.num_classes} classes in the order of its head (one per line)")
    names = read_classes_file(cfg.data.classes_file)
    if zoo.num_classes is not None and len(names) != zoo.num_classes:
        raise Action3dError(f"data.classes_file={cfg.data.classes_file}: {len(names)} classes, but the head of "
                            f"zoo={zoo.name} has {zoo.num_classes}; list them all, in head order")
    return names, f"data.classes_file={cfg.data.classes_file}"

