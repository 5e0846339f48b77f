"""Where the MLflow store is, whether it can be used, and how to look at it. Nothing here imports MLflow
(workflows/tracking.py makes every MLflow call): the entry points resolve and check the store, in one line,
before any MLflow call, whose client retries a server that is not there for minutes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DASHBOARD_PORT = 5000


def is_registry_reference(reference: str) -> bool:
    """Whether `reference` names an artifact in the MLflow store (runs:/<run_id>/<path>, models:/<name>/<version>
    or models:/<name>@<alias>) rather than a folder or an s3:// URI."""
    return reference.startswith(("runs:/", "models:/"))


def default_tracking_uri() -> str:
    """The embedded default: a SQLite store in the working folder (the file store is deprecated)."""
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None) -> str:
    """An explicit URI wins, then MLFLOW_TRACKING_URI (the variable MLflow itself reads), then the default.

    A relative SQLite path is made absolute so every process (job driver, Ray workers) opens the same file.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


# One quick probe of a tracking server before any work: MLflow's own client retries a refused connection for
# minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES with exponential backoff), which is right mid-run, not at the start.
PROBE_TIMEOUT_S = 5.0


def check_tracking_store(uri: str, must_exist: bool = False) -> None:
    """Raises ValueError (one line naming the store and the reason) when the resolved tracking URI `uri` cannot
    be used: a SQLite store whose folder is missing or not writable (or, with `must_exist`, whose file is not
    there: a lookup would create an empty store), or an http(s) server that does not answer one request within
    PROBE_TIMEOUT_S. Creates nothing. Other schemes are left to MLflow."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if must_exist and not path.is_file():
            raise ValueError(f"--tracking-uri {uri}: no MLflow store at {path} (nothing has been tracked there)")
        if not path.parent.is_dir():
            raise ValueError(f"--tracking-uri {uri}: not writable ({path.parent} is not a folder)")
        target = path if path.exists() else path.parent
        if not os.access(target, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            raise ValueError(f"--tracking-uri {uri}: not writable (no write permission on {target})")
    elif uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S).close()
        except urllib.error.HTTPError:  # it answered (401, 404, ...): a server is there; MLflow says the rest
            return
        except (OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise ValueError(f"--tracking-uri {uri}: MLflow server not reachable ({reason})") from None


def runs_page_url(server: str, experiment_id: str) -> str:
    """The experiment's "Model training" runs table, where a sweep's parent expands into its children
    (MLflow 3 would otherwise open its GenAI traces overview)."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def dashboard_lines(uri: str, experiment_id: str) -> list[str]:
    """How to look at the runs: the command that serves a SQLite store, and the page to open."""
    if uri.startswith("sqlite:"):
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        return [
            f"Open the dashboard: {mlflow_bin} ui --backend-store-uri {uri} --host 127.0.0.1 --port {DASHBOARD_PORT}",
            f"  then browse {runs_page_url(f'http://127.0.0.1:{DASHBOARD_PORT}', experiment_id)}",
        ]
    if uri.startswith(("http://", "https://")):
        return [f"Open the dashboard: {runs_page_url(uri, experiment_id)}"]
    return [f"MLflow store: {uri}"]
