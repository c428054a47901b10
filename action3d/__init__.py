"""action3d: train and evaluate video action-recognition models from the command line."""

__version__ = "0.1.0"
