"""What `data prepare` and `data extract` share: one job per video, run in worker processes, and
a report of the videos that failed.

A job's worker function returns a one-line reason (a str) when its video failed and anything else
when it succeeded; a worker process that dies (a crashing decoder) is reported the same way.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

from tqdm import tqdm

from action3d.errors import Action3dError
from action3d.files import atomic_write

log = logging.getLogger("action3d.data")


def relative_to_root(path: str, root: Path, *, command: str) -> str:
    """`path` relative to the dataset root; a video outside it is refused naming `command`."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(root))
    except ValueError:
        raise Action3dError(f"{command}: video {path} is not under data.root={root}") from None


def run_video_jobs(jobs: Sequence[Any], worker: Callable[[Any], Any], *, workers: int, progress: bool,
                   command: str) -> Tuple[Dict[str, Any], List[Tuple[str, str]]]:
    """Run `worker(job)` for each job (in `workers` processes; in this process when workers <= 1
    or there is one job). Each job has `.source` (the video) and `.target` (what it writes).
    Returns {target: result} of the jobs that succeeded and (target, reason) of those that failed."""
    from action3d.data.decode import describe_error

    done, failures = {}, []
    bar = tqdm(total=len(jobs), desc=command, unit="video", disable=not progress)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(jobs) > 1 else None
    if pool is None:
        outcomes = ((job, worker(job)) for job in jobs)
    else:
        futures = {pool.submit(worker, job): job for job in jobs}
        outcomes = ((futures[f], _outcome(f, futures[f], describe_error)) for f in as_completed(futures))
    try:
        for job, outcome in outcomes:
            if isinstance(outcome, str):
                failures.append((job.target, outcome))
                log.warning("%s: skipped %s", command, outcome)
            else:
                done[job.target] = outcome
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return done, failures


def _outcome(future, job, describe_error) -> Any:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - a worker killed by a crashing decoder
        return f"{job.source}: worker process failed ({describe_error(error)})"


def write_failures(report: Path, failures: List[Tuple[str, str]]) -> None:
    """One reason (naming its video) a line; no file when nothing failed (a rerun that fixed
    everything removes a stale report)."""
    if not failures:
        if report.exists():
            report.unlink()
        return
    report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(report, "".join(f"{reason}\n" for _, reason in failures))
