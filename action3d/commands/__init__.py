"""The edge of action3d: one module per command (`action3d COMMAND ...`).

Only this layer reads Hydra's runtime (run directory, overrides), prints end-of-run summaries
and chooses exit codes. Each module's `run(cfg)` gets the composed config from `action3d.cli` and
calls the library (`action3d.engine`, `action3d.data`, `action3d.models`), which takes the run
directory, seed and resolved configs as arguments and raises `Action3dError`.
"""
