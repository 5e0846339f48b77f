"""The generation probe of a tokenizer: a DiT (vitok.generation) trained with flow matching on the tokenizer's
cached latents under Ray Train, then N samples decoded by the tokenizer and scored against held-out reals, in an
MLflow run that is a child of the tokenizer's run (DESIGN.md section 7).

plan.py checks everything first (errors.GenerationError, one line); driver.run_generator runs the TorchTrainer
whose workers run worker.py: ingest.py (latents via Ray Data), checkpoints.py, ema.py, then sampling.py and
metrics.py, the samples grid (grid.py) and the export. Entry script: workflows/train_generator.py.
"""
