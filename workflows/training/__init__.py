"""Tokenizer training: ViTok under DeepSpeed ZeRO on the tubelet shards, one planned config per run.

plan.py checks a config before any work; spec.py makes the plan a kind of run for the run engine
(workflows/runs), whose workers build worker.py's state: the engine (deepspeed_config.py, optim.py,
weights.py), the objective (objectives.py), augmentation (ingest.py), then evaluation.py and the export.
Entry scripts: workflows/train.py, and workflows/scale_sweep.py for many runs.
"""
