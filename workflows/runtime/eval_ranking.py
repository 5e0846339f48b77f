"""Which way each eval metric ranks tokenizers: the registry's `best` alias and the sweep's --best-by.

Apart from the tracking code so that an entry point can offer --best-by's choices without importing MLflow.
"""

from __future__ import annotations

# Eval metrics where a lower value is the better tokenizer; for every other metric higher is better.
LOWER_IS_BETTER = frozenset({"eval_lpips", "eval_rfid", "eval_rfvd"})
# The eval metrics every training run logs or may log, which --best-by can rank the registered versions by.
RANKING_METRICS = ("eval_psnr", "eval_ssim", *sorted(LOWER_IS_BETTER))
