"""Following a run in the trackers people use: TensorBoard, Trackio, Weights & Biases, MLflow.

Workbench does not log to them itself: transformers' own integrations do (`report_to`), fed by the same
Trainer logs as the run log. `tracking_setup(config, paths)` checks that the tracker's package is installed
and points it at the run's folder, so the local ones need no account and no server:

    tensorboard   <run>/tracking/tensorboard/   tensorboard --logdir models/adapters/<run>/tracking/tensorboard
    trackio       <run>/tracking/trackio/        TRACKIO_DIR=models/adapters/<run>/tracking/trackio trackio show
    mlflow        <run>/tracking/mlruns/         mlflow ui --backend-store-uri models/adapters/<run>/tracking/mlruns
    wandb         <run>/tracking/wandb/          offline unless WANDB_MODE / an API key says otherwise

A location the environment already sets (TENSORBOARD_LOGGING_DIR, TRACKIO_DIR, MLFLOW_TRACKING_URI, WANDB_DIR)
wins. Runs in the training process only; torch-free.
"""

from __future__ import annotations

import importlib.util
import os

from workbench.errors import WorkbenchError
from workbench.training.config import JobConfig, RunPaths

PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow"}
_SET: dict[str, str] = {}  # what this process set itself: replaced by the next run, unlike a person's own setting


def _point(key: str, value: str) -> None:
    if key not in os.environ or _SET.get(key) == os.environ[key]:
        os.environ[key] = _SET[key] = value


def tracking_dir(paths: RunPaths, tracker: str):
    """Where a local tracker writes a run's files."""
    return paths.run_dir / "tracking" / ("mlruns" if tracker == "mlflow" else tracker)


def check_tracker(tracker: str) -> None:
    """Raise WorkbenchError when the tracker's package is not installed."""
    package = PACKAGES.get(tracker)
    if package and importlib.util.find_spec(package) is None:
        raise WorkbenchError(f"Reporting to {tracker} needs its package: pip install {package}.")


def tracking_setup(config: JobConfig, paths: RunPaths) -> str:
    """The Trainer's `report_to` for the job, after pointing a local tracker at `<run>/tracking/`."""
    tracker = config.report_to
    if tracker == "none":
        return "none"
    check_tracker(tracker)
    folder = tracking_dir(paths, tracker)
    folder.mkdir(parents=True, exist_ok=True)
    if tracker == "tensorboard":
        _point("TENSORBOARD_LOGGING_DIR", str(folder))
    elif tracker == "trackio":
        _point("TRACKIO_DIR", str(folder))
    elif tracker == "mlflow":
        _point("MLFLOW_TRACKING_URI", folder.as_uri())
        _point("MLFLOW_EXPERIMENT_NAME", "workbench")
    elif tracker == "wandb":
        _point("WANDB_DIR", str(folder))
        if not os.environ.get("WANDB_API_KEY"):
            _point("WANDB_MODE", "offline")  # no account: `wandb sync` uploads it later
        _point("WANDB_PROJECT", "workbench")
    return tracker
