"""What the console shows: by default a person's view (stage headers, per-config progress and results), with
`--verbose` everything Ray, DeepSpeed and MLflow have to say.

Quiet mode works at three levels, each scoped to what it names: Ray keeps the workers' output in its log
files (`connect_ray(verbose=False)`), the chatty libraries' loggers are raised to WARNING, and the few
third-party warnings known to repeat every step are filtered by category and module.
"""

from __future__ import annotations

import logging
import threading
import warnings

# Loggers that report their internals at INFO on every run (Ray Train's controller, Ray Data's executor,
# MLflow's system-metrics sampler, DeepSpeed's engine).
CHATTY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "mlflow", "DeepSpeed", "deepspeed", "torch.distributed")

_print_lock = threading.Lock()


def say(message: str) -> None:
    """One whole line on stdout, flushed, never interleaved with another thread's line."""
    with _print_lock:
        print(message, flush=True)


def quiet_third_party_warnings() -> None:
    """Filters the third-party warnings that repeat on every step or every run (not our own)."""
    # DeepSpeed's ZeRO calls torch.distributed's deprecated collectives on every step.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"deepspeed(\.|$)")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.distributed(\.|$)")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.distributed(\.|$)")
    # Ray's deprecation notes about its own APIs, and pydantic/setuptools notes from libraries' imports.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
    warnings.filterwarnings("ignore", message=r".*pkg_resources is deprecated.*")


def configure_console(verbose: bool) -> None:
    """The driver's console: our own lines at INFO; the chatty libraries at WARNING unless `verbose`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if verbose:
        return
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_third_party_warnings()
