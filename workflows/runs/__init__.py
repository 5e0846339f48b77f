"""The run engine that every kind of training run shares: plan -> driver (Ray Train TorchTrainer) -> worker.

A kind of run fills in the contract of spec.py (a `RunSpec` on the driver, a `RunState` on each worker); the
engine does the rest: the room check (room.py), the MLflow run and resume by name, the trainer and its progress
lines (driver.py, progress.py), the step loop with logging and checkpoints (worker.py, checkpoints.py, rng.py,
hardware.py) and the data plumbing both kinds use (ingest.py). The tokenizer (workflows/training/spec.py) and
the generator (workflows/generation/spec.py) are the two kinds today.
"""
