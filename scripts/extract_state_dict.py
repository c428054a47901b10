#!/usr/bin/env python
"""Extract the plain state dict from a checkpoint, so `model.pretrained=OUT` can load it.

    python scripts/extract_state_dict.py IN.pth OUT.pt            # safe: weights_only loading
    python scripts/extract_state_dict.py IN.pth OUT.pt --trust    # runs the file's pickled code

action3d reads checkpoints with `torch.load(..., weights_only=True)` and refuses files holding
pickled objects other than tensors and plain data (OpenMMLab training metadata is tolerated).
Some checkpoints carry such objects beside their weights, e.g. torchvision's reference scripts
save `args` as an `argparse.Namespace`, other projects pickle their config classes. If you
trust where the file comes from, `--trust` loads it with `weights_only=False` (which executes
any code in it) and writes only its tensors, so that later loads are safe again.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from action3d.errors import Action3dError
from action3d.models.weights_convert import find_state_dict
from action3d.models.weights_io import read_checkpoint


def extract(src: Path, dst: Path, *, trust: bool = False) -> int:
    """Write `src`'s state dict (tensors only) to `dst` atomically; return the tensor count."""
    if trust:
        if not src.is_file():
            raise Action3dError(f"checkpoint {src}: no such file")
        try:
            ckpt = torch.load(src, map_location="cpu", weights_only=False)
        except Exception as err:   # e.g. the pickled classes' package is not installed
            raise Action3dError(f"checkpoint {src}: could not be unpickled even with --trust "
                                f"({type(err).__name__}: {err})") from None
    else:
        ckpt = read_checkpoint(src)
    _, state = find_state_dict(ckpt, f"checkpoint {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    return len(state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="checkpoint to read")
    parser.add_argument("dst", type=Path, help="where to write the plain state dict")
    parser.add_argument("--trust", action="store_true",
                        help="load with weights_only=False: runs code pickled in SRC")
    args = parser.parse_args(argv)
    try:
        count = extract(args.src, args.dst, trust=args.trust)
    except Action3dError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {count} tensors to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
