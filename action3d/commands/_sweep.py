"""Sweeps (`action3d train -m ...`): the pre-check of their jobs, the value a job returns to the
sweeper, and the summary table at the end.

- Grid sweeps (`optim.lr=0.1,0.01`, `range(...)`) run under Hydra's basic sweeper; searches
  (`'optim.lr=tag(log, interval(0.001, 0.1))'`) under the Optuna sweeper (`hydra/sweeper=optuna`,
  the `hydra-optuna-sweeper` package). A job returns its best value of `trainer.monitor` (val
  top-1 by default, mAP under multi-label, or the val loss), which the search maximises (minimises
  for the loss) unless `hydra.sweeper.direction` is given (`search_defaults`); a job that stops
  early (`trainer.early_stop_patience`) returns its best value all the same.
- `sweep_jobs` lists the jobs `action3d.cli.prevalidate` composes and checks before anything
  runs: every combination of a grid; for a search every key with its bounds (a search draws its
  values later, so a bad key or an unparsable search space is found before the first trial).
- A job that fails (a diverged loss, a bad trial value) is recorded (`failed_job`) and returns
  the value that ranks it last (`FAILED_VALUE` when maximising, +inf when minimising); the sweep
  goes on.
- Each job writes `summary.json` into its own directory; the `SweepSummary` Hydra callback
  (registered in conf/train.yaml) collects them, prints the table with the best job marked and
  writes `sweep_summary.md` and `sweep_summary.csv` into the sweep directory.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from action3d.errors import Action3dError
from action3d.files import atomic_write

# What a failed or diverged job returns: below any top-1 or mAP (0..1), so a maximising search ranks
# it last; a minimising one (trainer.monitor=loss) gets +inf.
FAILED_VALUE = -1.0
SEARCH_SWEEPERS = {"optuna": "hydra_plugins.hydra_optuna_sweeper"}
CSV_FIELDS = ["job", "overrides", "best_top1", "best_epoch", "status", "best", "checkpoint", "error", "monitor",
              "best_value"]
MONITOR_LABELS = {"top1": "top-1 (%)", "map": "mAP (%)", "loss": "loss"}


# ---------------------------------------------------------------------------------- before the sweep

def chosen_sweeper(overrides: Sequence[Any]) -> str | None:
    """`optuna` for `hydra/sweeper=optuna` among parsed overrides; None: Hydra's basic sweeper."""
    for override in overrides:
        if override.key_or_group == "hydra/sweeper":
            return str(override.value())
    return None


def search_defaults(command: str, overrides: Sequence[str], cfgs: Sequence[Any] = ()) -> list[str]:
    """Overrides a search gets unless given: the Optuna sweeper maximises the returned top-1 or
    mAP, minimises the loss (`trainer.monitor` of the composed jobs `cfgs`; the plugin's own
    default is to minimise) and asks for one trial at a time (the plugin asks for 2, which the
    default launcher runs one after the other anyway: the second is then chosen without the
    first's result, and a grid sampler may hand both the same point)."""
    keys = {o.lstrip("+~").split("=", 1)[0]: o.split("=", 1)[-1].strip() for o in overrides}
    if command != "train" or keys.get("hydra/sweeper") != "optuna":
        return []
    defaults = {"hydra.sweeper.direction": direction(cfgs[0]) if cfgs else "maximize", "hydra.sweeper.n_jobs": "1"}
    return [f"{key}={value}" for key, value in defaults.items() if key not in keys]


def direction(cfg: Any) -> str:
    """How a search treats a job's returned value: minimize for trainer.monitor=loss, else maximize."""
    from action3d.config.train import monitored

    return "minimize" if monitored(cfg.trainer, cfg.data.multi_label) == "loss" else "maximize"


def sweep_jobs(command: str, overrides: Sequence[Any]) -> list[list[str]]:
    """The jobs to compose and check before a sweep starts (override strings per job).

    overrides: the parsed command line. With the basic sweeper, every combination of the job
    overrides (Hydra's own split); an interval there is an error. With a search sweeper, each
    search dimension contributes its bounds (interval) or its values (choice, range), so the keys
    and the ends of each range are checked; the sweeper's own settings (`hydra.sweeper.*`) are
    composed too, and for Optuna the search space is built once as the sweeper will build it.
    """
    job_overrides = [o for o in overrides if not o.is_hydra_override()]
    sweeper = chosen_sweeper(overrides)
    if sweeper is None or sweeper == "basic":
        for override in job_overrides:
            if override.is_interval_sweep():
                raise Action3dError(f"{override.input_line}: an interval is a search space, which the default "
                                    "(grid) sweeper cannot run; search it with hydra/sweeper=optuna "
                                    "hydra.sweeper.n_trials=N, or give a list of values (a,b,c)")
        return grid(job_overrides)
    if sweeper in SEARCH_SWEEPERS:
        _require_plugin(sweeper)
    _check_sweeper_settings(command, [o.input_line for o in overrides if o.is_hydra_override()])
    per_key = []
    for override in job_overrides:
        if sweeper == "optuna":
            _check_optuna_space(override)
        per_key.append([f"{override.get_key_element()}={value}" for value in _representatives(override)])
    return [list(job) for job in itertools.product(*per_key)]


def grid(overrides: Sequence[Any]) -> list[list[str]]:
    """Every combination of the overrides' values, as Hydra's basic sweeper runs them: one list
    of `key=value` strings per job, the first key's values outermost; a later override of the
    same key replaces an earlier one."""
    per_key: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        values = override.sweep_string_iterator() if override.is_sweep_override() else [
            override.get_value_element_as_str()]
        per_key[key] = [f"{key}={value}" for value in values]
    return [list(job) for job in itertools.product(*per_key.values())]


def _check_sweeper_settings(command: str, hydra_overrides: list[str]) -> None:
    """`hydra.sweeper.n_trials=abc`, `hydra.sweeper.n_trial=3`: one line before anything runs."""
    from hydra import compose

    from action3d.commands._hydra import _initialized, describe_compose_error

    with _initialized(command):
        try:
            compose(config_name=command, overrides=hydra_overrides, return_hydra_config=True)
        except Exception as err:
            raise Action3dError(describe_compose_error(err)) from None


def _representatives(override: Any) -> list[str]:
    """Values of one override that stand for all a search may draw: an interval's two bounds, a
    choice's or a range's every value, or the single value of a plain override."""
    if override.is_interval_sweep():
        value = override.value()
        return [str(value.start), str(value.end)]
    if override.is_sweep_override():
        return list(override.sweep_string_iterator())
    return [override.get_value_element_as_str()]


def _require_plugin(sweeper: str) -> None:
    import importlib.util

    if importlib.util.find_spec(SEARCH_SWEEPERS[sweeper]) is None:
        raise Action3dError(f"hydra/sweeper={sweeper}: the sweeper is not installed; pip install "
                            f"hydra-{sweeper}-sweeper (make install installs it)")


def _check_optuna_space(override: Any) -> None:
    """Build the Optuna distribution the sweeper will build (bounds, log scale, steps)."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    if not override.is_sweep_override():
        return
    try:
        create_optuna_distribution_from_override(override)
    # What the builder raises for a space it cannot take: optuna's ValueError (bounds, log scale),
    # the plugin's assertions and NotImplementedError (a sweep kind Optuna has no distribution for),
    # TypeError for values of the wrong kind. Anything else is a defect and goes up as it is.
    except (ValueError, TypeError, AssertionError, NotImplementedError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise Action3dError(f"{override.input_line}: not a search space Optuna accepts: {reason}") from None


# ---------------------------------------------------------------------------------- each job

def in_sweep() -> bool:
    """Whether this task runs as one job of a multirun (`-m`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def objective(summary: dict[str, Any]) -> float:
    """What a train job returns to the sweeper: its best value of trainer.monitor (summary.json's
    `best_value`; `best_top1` in a summary from before trainer.monitor), else the value that
    ranks it last."""
    best = summary.get("best_value", summary.get("best_top1"))
    return failed_value(summary.get("monitor", "top1")) if best is None else float(best)


def failed_value(monitor: str | None = None) -> float:
    """The value that ranks a job last: `FAILED_VALUE` for a maximised metric, +inf for the loss.
    Without `monitor`, the running search's direction decides (Hydra's sweeper config)."""
    if monitor is None:
        monitor = "loss" if _sweep_direction() == "minimize" else "top1"
    return float("inf") if monitor == "loss" else FAILED_VALUE


def _sweep_direction() -> str:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return "maximize"
    return str(HydraConfig.get().sweeper.get("direction", "maximize")).lower()


def failed_job(message: str) -> float:
    """Record a failed job of a sweep in its directory (the table lists it) and return the value
    that ranks it last. An unexpected exception's traceback goes into summary.json too."""
    from action3d.commands._hydra import run_dir, task_overrides

    value = failed_value()
    summary = {"status": "failed", "error": message, "best_top1": None, "best_value": None, "best_epoch": None,
               "overrides": task_overrides(), "objective": value}
    if sys.exc_info()[0] is not None and not isinstance(sys.exc_info()[1], Action3dError):
        summary["traceback"] = traceback.format_exc()
    atomic_write(run_dir() / "summary.json", json.dumps(summary, indent=2))
    return value


# ---------------------------------------------------------------------------------- after the sweep

def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job; `overrides` keeps only those that differ between jobs (the swept ones);
    `best` marks the job with the best value of trainer.monitor (the highest top-1 or mAP, the
    lowest loss)."""
    summaries = [(path.parent.name, json.loads(path.read_text())) for path in
                 sorted(sweep_dir.glob("*/summary.json"), key=lambda p: _job_number(p.parent.name))]
    common = set.intersection(*(set(s.get("overrides", [])) for _, s in summaries)) if len(summaries) > 1 else set()
    rows = []
    for job, summary in summaries:
        swept = [o for o in summary.get("overrides", []) if o not in common]
        rows.append({"job": job, "overrides": " ".join(swept),
                     "best_top1": summary.get("best_top1"), "best_epoch": summary.get("best_epoch"),
                     "status": summary.get("status"), "best": False, "checkpoint": summary.get("checkpoint"),
                     "error": summary.get("error"), "monitor": summary.get("monitor", "top1"),
                     "best_value": summary.get("best_value", summary.get("best_top1"))})
    scored = [r for r in rows if r["best_value"] is not None]
    if scored:
        min(scored, key=_rank_key)["best"] = True  # the first of equals (lowest job number)
    return rows


def _rank_key(row: dict[str, Any]) -> float:
    """Better rows sort first; a row without a value last."""
    if row["best_value"] is None:
        return float("inf")
    return row["best_value"] if row["monitor"] == "loss" else -row["best_value"]


def _job_number(name: str) -> int:
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else 1 << 30


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _shown(row: dict[str, Any]) -> str:
    """A row's monitored value as the table shows it: a percentage, or the loss."""
    if row["monitor"] == "loss":
        return "n/a" if row["best_value"] is None else f"{row['best_value']:.4f}"
    return _pct(row["best_value"])


def _short_floats(overrides: str) -> str:
    """`optim.lr=0.012345678901` -> `optim.lr=0.01235` (a search draws long floats)."""
    return re.sub(r"=(-?\d+\.\d{5,}(?:e-?\d+)?)\b", lambda m: f"={float(m.group(1)):.4g}", overrides)


def _status(row: dict[str, Any]) -> str:
    if row["status"] == "failed" and row.get("error"):
        error = row["error"].replace("|", "/")
        return f"failed: {error[:90]}{'...' if len(error) > 90 else ''}"
    return str(row["status"])


def markdown_table(rows: list[dict[str, Any]]) -> str:
    monitor = next((r["monitor"] for r in rows if r["best_value"] is not None), "top1")
    lines = [f"| job | overrides | best val {MONITOR_LABELS.get(monitor, monitor)} | best epoch | status | best |",
             "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=_rank_key):
        epoch = "" if r["best_epoch"] is None else r["best_epoch"]
        lines.append(f"| {r['job']} | `{_short_floats(r['overrides'])}` | {_shown(r)} | {epoch} | "
                     f"{_status(r)} | {'<- best' if r['best'] else ''} |")
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = collect(sweep_dir)
    atomic_write(sweep_dir / "sweep_summary.md", markdown_table(rows))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(sweep_dir / "sweep_summary.csv", text.getvalue())
    return rows


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir)
        failed = sum(r["status"] == "failed" for r in rows)
        counts = f"{len(rows)} jobs" + (f", {failed} failed" if failed else "")
        print(f"\nsweep summary ({counts}), also in {sweep_dir / 'sweep_summary.md'}:")
        print(markdown_table(rows), flush=True)
        best = next((r for r in rows if r["best"]), None)
        if best is not None:
            label = MONITOR_LABELS.get(best["monitor"], best["monitor"]).replace(" (%)", "")
            unit = "" if best["monitor"] == "loss" else "%"
            print(f"best: job {best['job']} ({_short_floats(best['overrides']) or 'no swept overrides'}): "
                  f"val {label} {_shown(best)}{unit}, checkpoint {best['checkpoint']}", flush=True)
        elif rows:  # nothing to show for the whole sweep: a script must not take it for a result
            print(f"action3d train: error: none of the {len(rows)} jobs of the sweep produced a validation "
                  "metric (see the table)", file=sys.stderr, flush=True)
            sys.exit(1)
