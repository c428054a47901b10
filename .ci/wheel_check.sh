#!/usr/bin/env bash
# The built wheel works away from the checkout: installed without -e into a separate folder
# (reusing the venv's torch), run from a directory outside the checkout, with no ACTION3D_CONF or
# PYTHONPATH pointing back into it. Usage: bash .ci/wheel_check.sh PYTHON
set -euo pipefail
PY=$(realpath -s "${1:-.venv/bin/python}")
CHECKOUT=$(pwd)
WORK=$(mktemp -d /tmp/action3d-wheel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" . 2>&1 | grep -v "^WARNING: Location" || true
"$PY" -m pip install -q --no-deps --target "$WORK/site" "$WORK"/dist/action3d-*.whl 2>&1 | grep -v "^WARNING: Location" || true
mkdir "$WORK/elsewhere"
cd "$WORK/elsewhere"
unset ACTION3D_CONF
export PYTHONPATH="$WORK/site" ACTION3D_CACHE="$WORK/cache"
"$PY" - "$WORK/site" "$CHECKOUT" <<'PY'
import sys
from pathlib import Path
import action3d
from action3d.commands._hydra import CONF_DIR
site, checkout = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
assert Path(action3d.__file__).resolve().is_relative_to(site), action3d.__file__
assert Path(CONF_DIR).resolve().is_relative_to(site) and (Path(CONF_DIR) / "train.yaml").is_file(), CONF_DIR
shipped = {p.relative_to(CONF_DIR) for p in Path(CONF_DIR).rglob("*.yaml")}
missing = {p.relative_to(checkout / "conf") for p in (checkout / "conf").rglob("*.yaml")} - shipped
assert not missing, f"the wheel lacks these configs: {sorted(map(str, missing))}"
from action3d.config import model_presets  # the model presets: Python values, no conf/model files
assert Path(model_presets.__file__).resolve().is_relative_to(site), model_presets.__file__
assert not (Path(CONF_DIR) / "model").exists(), "a conf/model folder would shadow the Python presets"
import importlib, pkgutil  # every module of the source tree ships and imports from the wheel
listed = {m.name for m in pkgutil.walk_packages(action3d.__path__, "action3d.")}
in_tree = {".".join(("action3d",) + p.relative_to(checkout / "action3d").with_suffix("").parts).removesuffix(".__init__")
           for p in (checkout / "action3d").rglob("*.py")}
lacking = sorted(in_tree - listed - {"action3d"})
assert not lacking, f"the wheel lacks these modules: {lacking}"
for name in sorted(listed - {"action3d.__main__"}):  # __main__ would run the CLI
    importlib.import_module(name)
print(f"wheel check: action3d from {action3d.__file__}, configs from {CONF_DIR}")
PY
"$WORK/site/bin/action3d" --version
"$WORK/site/bin/action3d" info model=r3d_18 input=[3,16,112,112] | tail -3
"$WORK/site/bin/action3d" train trainer.max_epochs=1 model.base_channels=8 data.synthetic.train_per_class=2 \
    data.synthetic.val_per_class=1 data.synthetic.num_frames=8 data.synthetic.size=32 data.clip_len=4 \
    data.short_side=32 data.crop_size=32 data.batch_size=4 data.num_workers=0 hydra.run.dir=run | tail -1
test -f run/last.pt && test -f run/summary.json
echo "wheel check: ok"
