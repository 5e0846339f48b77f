"""The generation probe of a tokenizer: a DiT (vitok.generation) trained with flow matching on the tokenizer's
cached latents under Ray Train, then N samples decoded by the tokenizer and scored against held-out reals, in an
MLflow run that is a child of the tokenizer's run.

plan.py checks everything first (errors.GenerationError, one line); spec.py makes the plan a kind of run for
the run engine (workflows/runs), whose workers build worker.py's state: ingest.py (latents via Ray Data), ema.py,
then sampling.py and metrics.py, the samples grid (grid.py) and the export. Entry script:
workflows/train_generator.py.
"""
