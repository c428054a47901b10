"""One composition path: the command line's pre-check, the tests and scripts compose through
`compose_config`, which equals what `hydra.main` gives the task; each rule runs once per run."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from action3d.commands._hydra import compose_config

from conftest import SMALL

# The task the CLI runs, replaced by one that prints the config hydra.main composed (then exits).
PRINT_TASK = textwrap.dedent("""\
    import sys
    from omegaconf import OmegaConf
    import action3d.cli as cli
    cli._load = lambda target: (lambda cfg: print("<<<" + OmegaConf.to_yaml(cfg) + ">>>"))
    sys.exit(cli.main(sys.argv[1:]))
""")

COMMAND_LINES = [
    ["train"],
    ["train", "model=slowfast_r50", "data=ucf101", "data.root=/tmp", "data.annotation_dir=/tmp",
     "optim=adamw", "optim.betas=[0.8,0.9]", "trainer.max_epochs=3"],
    ["train", "recipe=demo", "+trainer.resume=auto", "data.mean=[1,2,3]", "model.inflate=[1,[0],1,1]"],
    ["info", "model=i3d_r50", "input=[3,8,32,32]", "model.depth=101", "model.inflate=[1,1,1,1]"],
]


def hydra_main_config(argv, tmp_path) -> str:
    result = subprocess.run([sys.executable, "-c", PRINT_TASK, *argv, "hydra.run.dir=run", "hydra.output_subdir=null"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split("<<<", 1)[1].split(">>>", 1)[0]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=[" ".join(a) for a in COMMAND_LINES])
def test_compose_config_equals_what_hydra_main_gives_the_task(argv, tmp_path):
    command, *overrides = argv
    if "+trainer.resume=auto" in overrides:   # `+` adds a key Hydra's tree lacks: here it exists, so plain
        overrides = [o.lstrip("+") for o in overrides]
        argv = [command, *overrides]
    assert OmegaConf.to_yaml(compose_config(command, overrides)) == hydra_main_config(argv, tmp_path)


def test_a_train_run_checks_each_rule_once(tmp_path, cache_dir, monkeypatch):
    """The values of a config are checked once (the pre-check; the Hydra task and the Trainer find
    them checked), and ResNet3d's constructor does not check again the arguments the config check
    passed; a direct Python call with new arguments is still checked."""
    from action3d.cli import main
    from action3d.config import model_checks as model_rules
    from action3d.config import validation as validate
    from action3d.models import ResNet3d

    counts = {"values": 0, "resnet3d": 0}
    check_values, check_fields = validate._check_values, model_rules.check_fields

    def counted(name, function, when=lambda kwargs: True):
        def wrapper(*args, **kwargs):
            counts[name] += when(kwargs)
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(validate, "_check_values", counted("values", check_values))
    resnet3d_keys = model_rules.RESNET3D_KEYS
    monkeypatch.setattr(model_rules, "check_fields",
                        counted("resnet3d", check_fields, lambda kwargs: kwargs["keys"] == resnet3d_keys))
    monkeypatch.chdir(tmp_path)
    assert main(["train", *SMALL, "trainer.max_steps=1", "model.base_channels=12", "hydra.run.dir=run"]) == 0
    assert (tmp_path / "run/last.pt").is_file()
    assert counts == {"values": 1, "resnet3d": 0}
    with pytest.raises(ValueError, match=r"^depth=19 is not allowed"):
        ResNet3d(19)
    assert counts["resnet3d"] == 1
