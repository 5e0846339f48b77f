"""The generation probe of one tokenizer of a sweep: cache its latents, train a DiT on them, sample and score, in
a generator run under the tokenizer's run (sweep -> tokenizer -> generator).

Resumable as the rest of the sweep: a FINISHED generator run is read back and nothing else is done; otherwise
the latent cache is completed (a rerun into the same folder encodes only what is missing) and the generator
resumes from its last checkpoint in the same MLflow run. Each tokenizer run gets its own cache folder,
`<latents>/<sweep>/<config>/<tokenizer run id>`, so a retrained tokenizer never meets latents of another.
"""

from __future__ import annotations

from dataclasses import dataclass


from workflows.config import GenerationConfig
from workflows.generation.spec import run_generator
from workflows.generation.plan import plan_generation
from workflows.latents.params import CacheOptions
from workflows.latents.pipeline import cache_latents
from workflows.runtime.console import say
from workflows.tracking import MlflowClient, RunResult, find_run, finished_result
from workflows.training.plan import RunPlan


@dataclass(frozen=True)
class GenerationProbe:
    """What every probe of one sweep shares; `run` is called once per finished tokenizer config."""

    client: MlflowClient
    tracking_uri: str
    experiment_id: str  # the sweep's experiment, where tokenizer runs and their generator runs live
    sweep: str
    latents: str  # root of the sweep's latent caches: an absolute folder every node sees, or s3://
    storage: str | None  # Ray Train storage for the generators' checkpoints (None: the default)
    tags: dict[str, str]
    verbose: bool = False

    def run(self, plan: RunPlan, config: GenerationConfig, tokenizer: RunResult) -> RunResult:
        """The generator run of tokenizer run `tokenizer` (trained from `plan`) with the settings `config`."""
        name = plan.config.name
        done = find_run(self.client, self.experiment_id, config.name, tokenizer.run_id)
        if done is not None and finished_result(done) is not None:
            say(f"[{name}] generation probe already finished in run {done.info.run_id}: skipped")
            return finished_result(done)
        output = f"{self.latents}/{self.sweep}/{name}/{tokenizer.run_id}"
        train = plan.config.train
        # The probe uses what its config's training held: as many encoder actors as training workers.
        options = CacheOptions(media_types=(config.media_type,), concurrency=train.num_workers,
                               num_gpus=1.0 if train.use_gpu else 0.0)  # fmt: skip
        say(f"[{name}] generation probe: caching {config.media_type} latents in {output}")
        cache_latents(plan.config.data.shards, f"runs:/{tokenizer.run_id}/model", output, options,
                      tracking_uri=self.tracking_uri, verbose=self.verbose)  # fmt: skip
        generation, files = plan_generation(config, output, self.tracking_uri, tokenizer_run=tokenizer.run_id,
                                            tokenizer_plan=plan)  # fmt: skip
        say(f"[{name}] generation probe: training {generation.dit_config.name} on {generation.train_rows} latents, "
            f"{config.steps} steps, then {generation.samples} samples")  # fmt: skip
        return run_generator(generation, files, self.tracking_uri, self.experiment_id, tags=self.tags,
                             storage=self.storage, verbose=self.verbose)  # fmt: skip
