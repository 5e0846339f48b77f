"""The sweep runner with stand-in trainers: concurrency by free resources, configs that can only run one at a
time trained in turn on one worker group, failures isolated, finished children skipped on resume, stage-2
runs after the run they start from. A real SQLite MLflow store."""

from __future__ import annotations

import threading
import time

import pytest

from workflows.sweeps.planning import plan_from_input
from workflows.sweeps.sweep_file import parse_sweep
from workflows.runs.driver import GroupResult
from workflows.sweeps.runner import SweepRunner, has_room, worker_groups
from workflows.tracking import MlflowClient, RunResult, create_run, find_children, find_parent, prepare_tracking


@pytest.fixture
def store(tmp_path):
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp")
    client = MlflowClient(uri)
    parent = create_run(client, experiment_id, "sw", tags={"sweep": "sw", "role": "sweep"})
    return client, experiment_id, parent


def plans_for(runs):
    raw = {"sweep": "sw", "experiment": "exp", "base": {"model": {"variant": "N-N/8"}, "train": {"steps": 20}},
           "runs": runs}
    return [plan_from_input(c, 1, 32) for c in parse_sweep(raw, "t.yaml").configs]


class FakeTrainer:
    """Creates the child run like run_training does (with a `model/` export), sleeps, records overlap; fails
    configs named 'bad*'."""

    def __init__(self, client, experiment_id, delay=0.3):
        self.client, self.experiment_id, self.delay = client, experiment_id, delay
        self.calls, self.active, self.max_active = [], 0, 0
        self.lock = threading.Lock()

    def __call__(self, plan, parent_run_id=None, **kwargs):
        with self.lock:
            self.calls.append((plan.config.name, plan.config.train.init_from))
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        run_id = create_run(self.client, self.experiment_id, plan.config.name, parent_run_id=parent_run_id)
        try:
            time.sleep(self.delay)
            if plan.config.name.startswith("bad"):
                self.client.set_terminated(run_id, "FAILED")
                raise RuntimeError("Training failed\nworker died: out of memory")
            self.client.log_metric(run_id, "eval_psnr", 20.0 + plan.config.model.channels)
            self.client.log_text(run_id, "{}", "model/config.json")  # the export a stage-2 run starts from
            self.client.set_terminated(run_id, "FINISHED")
            return RunResult(run_id, {"eval_psnr": 20.0 + plan.config.model.channels}, 1.0)
        finally:
            with self.lock:
                self.active -= 1


class FakeGroupTrainer:
    """`run_training_group` as FakeTrainer does `run_training`: each call records the names it got and the Ray
    Train run name; a config named 'bad*' stops its group there (the configs after it are not trained)."""

    def __init__(self, client, experiment_id):
        self.one = FakeTrainer(client, experiment_id, delay=0.0)
        self.groups = []

    def __call__(self, plans, parent_run_id=None, name=None, **kwargs):
        self.groups.append(([p.config.name for p in plans], name))
        results = [None] * len(plans)
        for index, plan in enumerate(plans):
            try:
                results[index] = self.one(plan, parent_run_id=parent_run_id)
            except RuntimeError as err:
                return GroupResult(results, err, index)
        return GroupResult(results)


def runner(store, trainer, cpus_free, parent=None, **kwargs):
    client, experiment_id, parent = store[0], store[1], parent or store[2]
    resources = lambda: ({"CPU": cpus_free}, {"CPU": cpus_free})  # noqa: E731
    return SweepRunner(client, experiment_id, parent, trainer, {}, resources=resources, log=lambda m: None, **kwargs)


def test_room_counts_reserved_resources():
    assert has_room({"CPU": 4}, {"CPU": 8}, {"CPU": 8}, {})
    assert not has_room({"CPU": 4}, {"CPU": 8}, {"CPU": 8}, {"CPU": 5})  # Ray's count lags: ours wins
    assert not has_room({"CPU": 4, "GPU": 2}, {"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1}, {})


def test_concurrent_when_there_is_room_sequential_otherwise(store):
    plans = plans_for([{"name": f"c{c}", "model": {"channels": c}} for c in (4, 8, 16)])
    client, experiment_id, _ = store
    wide = FakeTrainer(client, experiment_id)
    outcomes = runner(store, wide, cpus_free=16.0).run(plans)
    assert wide.max_active == 3 and all(o.error is None for o in outcomes)
    narrow = FakeTrainer(client, experiment_id, delay=0.05)
    fresh = create_run(client, experiment_id, "sw2")  # a new parent: nothing to skip
    runner(store, narrow, cpus_free=4.0, parent=fresh).run(plans)  # one config (2 workers + 2 headroom) at a time
    assert narrow.max_active == 1 and len(narrow.calls) == 3
    capped = FakeTrainer(client, experiment_id, delay=0.2)
    runner(store, capped, cpus_free=16.0, max_concurrent=2, parent=create_run(client, experiment_id, "sw3")).run(plans)
    assert capped.max_active == 2


def test_a_failed_child_does_not_stop_the_others(store):
    plans = plans_for([{"name": "c4", "model": {"channels": 4}}, {"name": "bad"}, {"name": "c16", "model": {"channels": 16}}])
    client, experiment_id, parent = store
    outcomes = runner(store, FakeTrainer(client, experiment_id, delay=0.01), cpus_free=4.0).run(plans)
    assert [o.plan.config.name for o in outcomes] == ["c4", "bad", "c16"]
    assert outcomes[1].error == "worker died: out of memory"
    assert outcomes[0].result and outcomes[2].result
    children = find_children(client, experiment_id, parent)
    assert {n: r.info.status for n, r in children.items()} == {"c4": "FINISHED", "bad": "FAILED", "c16": "FINISHED"}


def test_resume_skips_finished_children_and_finds_the_parent(store):
    client, experiment_id, parent = store
    assert find_parent(client, experiment_id, "sw") == parent
    plans = plans_for([{"name": "c4", "model": {"channels": 4}}, {"name": "c16", "model": {"channels": 16}}])
    first = FakeTrainer(client, experiment_id, delay=0.01)
    runner(store, first, cpus_free=4.0).run(plans[:1])  # "killed" after the first child
    second = FakeTrainer(client, experiment_id, delay=0.01)
    outcomes = runner(store, second, cpus_free=4.0).run(plans)
    assert [name for name, _ in second.calls] == ["c16"]
    assert outcomes[0].result.skipped and outcomes[0].result.metrics["eval_psnr"] == 24.0
    client.set_terminated(parent, "FINISHED")
    assert find_parent(client, experiment_id, "sw") is None  # a finished sweep is not resumed


def test_stage_two_waits_for_its_stage_one_export(store, tmp_path):
    client, experiment_id, _ = store
    plans = plans_for([
        {"name": "gan", "optim": {"gan_weight": 0.05}, "train": {"stage": 2, "init_from": "@lpips"}},
        {"name": "lpips", "optim": {"lpips_weight": 1.0}},
    ])
    trainer = FakeTrainer(client, experiment_id, delay=0.01)
    outcomes = runner(store, trainer, cpus_free=16.0, cache_dir=tmp_path).run(plans)
    assert [name for name, _ in trainer.calls] == ["lpips", "gan"]
    init_from = trainer.calls[1][1]
    assert init_from.endswith("/model") and outcomes[1].result.run_id in init_from
    assert outcomes[0].error is None


def test_stage_two_fails_when_its_stage_one_failed(store):
    client, experiment_id, _ = store
    plans = plans_for([{"name": "bad"}, {"name": "gan", "optim": {"gan_weight": 0.05},
                                         "train": {"stage": 2, "init_from": "@bad"}}])
    outcomes = runner(store, FakeTrainer(client, experiment_id, delay=0.01), cpus_free=16.0).run(plans)
    assert outcomes[1].error == "its init_from run 'bad' failed"


def test_the_probe_follows_each_finished_config_and_its_failure_leaves_the_tokenizer_standing(store):
    client, experiment_id, _ = store
    plans = plans_for([{"name": "c4", "model": {"channels": 4}}, {"name": "bad"}, {"name": "c16", "model": {"channels": 16}}])
    probed = []

    def probe(plan, result):
        probed.append((plan.config.name, result.skipped))
        if plan.config.name == "c16":
            raise OSError("latents /x: disk full")
        return RunResult("gen-" + result.run_id, {"gen_swd": 12.5, "gen_samples": 8.0})

    outcomes = runner(store, FakeTrainer(client, experiment_id, delay=0.01), cpus_free=4.0, probe=probe).run(plans)
    assert probed == [("c4", False), ("c16", False)]  # the failed config gets no probe
    assert outcomes[0].generation.metrics["gen_swd"] == 12.5 and outcomes[0].generation_error is None
    assert outcomes[1].generation is None and outcomes[1].error
    assert outcomes[2].result is not None and outcomes[2].generation_error == "latents /x: disk full"
    probed.clear()
    again = runner(store, FakeTrainer(client, experiment_id, delay=0.01), cpus_free=4.0, probe=probe).run(plans[:1])
    assert probed == [("c4", True)] and again[0].generation is not None  # a finished tokenizer still gets its probe


def test_configs_that_only_fit_one_at_a_time_share_a_worker_group(store):
    plans = plans_for([{"name": f"c{c}", "model": {"channels": c}} for c in (4, 8, 16)])
    client, experiment_id, parent = store
    grouped = FakeGroupTrainer(client, experiment_id)
    one_by_one = FakeTrainer(client, experiment_id, delay=0.0)
    outcomes = runner(store, one_by_one, cpus_free=4.0, train_group=grouped).run(plans)
    assert grouped.groups == [(["c4", "c8", "c16"], f"vitok-{parent}-group0")] and not one_by_one.calls
    assert all(o.result is not None for o in outcomes)
    # Room for two at once (8 CPUs: 2 x (2 workers + 2 for Ray Data)): each config its own run, as before.
    wide = FakeGroupTrainer(client, experiment_id)
    runner(store, FakeTrainer(client, experiment_id), cpus_free=8.0, train_group=wide,
           parent=create_run(client, experiment_id, "sw2")).run(plans)  # fmt: skip
    assert not wide.groups
    capped = FakeGroupTrainer(client, experiment_id)
    runner(store, FakeTrainer(client, experiment_id), cpus_free=16.0, max_concurrent=1, train_group=capped,
           parent=create_run(client, experiment_id, "sw3")).run(plans)  # fmt: skip
    assert [names for names, _ in capped.groups] == [["c4", "c8", "c16"]]


def test_a_failed_config_stops_its_group_and_the_rest_go_on_in_a_new_one(store):
    plans = plans_for([{"name": "c4", "model": {"channels": 4}}, {"name": "bad"}, {"name": "c16", "model": {"channels": 16}}])
    client, experiment_id, parent = store
    grouped = FakeGroupTrainer(client, experiment_id)
    outcomes = runner(store, FakeTrainer(client, experiment_id), cpus_free=4.0, train_group=grouped).run(plans)
    name = f"vitok-{parent}-group0"
    assert grouped.groups == [(["c4", "bad", "c16"], name), (["c16"], name)]
    assert [o.plan.config.name for o in outcomes] == ["c4", "bad", "c16"]
    assert outcomes[1].error == "worker died: out of memory" and outcomes[0].result and outcomes[2].result
    # Resumed: the finished configs are skipped, the failed one is trained again, in the same Ray Train run.
    again = FakeGroupTrainer(client, experiment_id)
    outcomes = runner(store, FakeTrainer(client, experiment_id), cpus_free=4.0, train_group=again).run(plans)
    assert again.groups == [(["bad"], name)] and outcomes[0].result.skipped and outcomes[2].result.skipped


def test_groups_are_cut_where_the_workers_change_and_not_formed_around_dependencies_or_probes(store):
    plans = plans_for([{"name": "a"}, {"name": "b"}, {"name": "one", "train": {"num_workers": 1}}, {"name": "c"}])
    assert [[p.config.name for p in g] for g in worker_groups(plans)] == [["a", "b"], ["one"], ["c"]]
    client, experiment_id, parent = store
    grouped = FakeGroupTrainer(client, experiment_id)
    runner(store, FakeTrainer(client, experiment_id), cpus_free=4.0, train_group=grouped).run(plans)
    assert grouped.groups == [(["a", "b"], f"vitok-{parent}-group0"), (["one"], f"vitok-{parent}-group1"),
                              (["c"], f"vitok-{parent}-group2")]  # fmt: skip
    staged = plans_for([{"name": "lpips"}, {"name": "gan", "train": {"stage": 2, "init_from": "@lpips"}}])
    unused = FakeGroupTrainer(client, experiment_id)
    runner(store, FakeTrainer(client, experiment_id), cpus_free=4.0, train_group=unused,
           parent=create_run(client, experiment_id, "sw2")).run(staged)  # fmt: skip
    probed = FakeGroupTrainer(client, experiment_id)
    runner(store, FakeTrainer(client, experiment_id), cpus_free=4.0, train_group=probed,
           probe=lambda plan, result: result, parent=create_run(client, experiment_id, "sw3")).run(plans[:2])
    assert not unused.groups and not probed.groups
