"""What a training worker starts before building its engine and uses after: the train split's first batch and
the MLflow store, each opened in the background. The batches are the same, in the same order, as a plain
iteration (a resumed run's skip included), and a failure in the background is raised where the result is used."""

from __future__ import annotations

import threading
import time

import pytest

from workflows.runs.worker import TimedBatches
from workflows.runtime.background import in_background
from workflows.tracking import RunLogger, metric_history, tracking_client


def counting(log: list[str]):
    """Batches 0, 1, 2, ... that record which thread drew each."""
    n = 0
    while True:
        log.append(threading.current_thread().name)
        yield n
        n += 1


def test_the_first_batch_is_drawn_before_it_is_asked_for():
    drawn: list[str] = []
    batches = TimedBatches(counting(drawn))
    deadline = time.monotonic() + 10
    while not drawn and time.monotonic() < deadline:
        time.sleep(0.01)
    assert drawn == ["first-batch"]  # drawn in the background, before the loop asked
    assert [next(batches) for _ in range(4)] == [0, 1, 2, 3]
    assert drawn[1:] == [threading.current_thread().name] * 3


@pytest.mark.parametrize("skip", [0, 1, 5])
def test_skip_continues_where_a_plain_iteration_would(skip):
    batches = TimedBatches(counting([]))
    batches.skip(skip)
    assert batches.wait == 0.0  # the dropped batches are not data waits of the step loop
    assert [next(batches) for _ in range(3)] == [skip, skip + 1, skip + 2]


def test_a_failure_in_the_background_is_raised_where_the_result_is_used():
    def broken():
        raise OSError("split unavailable")
        yield  # a generator

    batches = TimedBatches(broken())
    with pytest.raises(OSError, match="split unavailable"):
        next(batches)
    with pytest.raises(ZeroDivisionError):
        in_background(lambda: 1 / 0, "divide").result(timeout=10)


def test_run_logger_writes_to_the_store_it_opened_in_the_background(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = tracking_client(uri)
    run_id = client.create_run(client.create_experiment("openings")).info.run_id
    logger = RunLogger(uri, run_id)
    logger.metrics({"train_loss": 0.5}, step=3)
    assert logger.last_step("train_loss") == 3
    assert metric_history(client, run_id, "train_loss") == [(3, 0.5)]
