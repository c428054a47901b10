"""Training, evaluation, checkpoints, metrics and distributed helpers."""
