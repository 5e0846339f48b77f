"""Unit tests of held-out evaluation and of the ingest augmentation (pure torch, no Ray)."""

from __future__ import annotations

import pytest
import torch

from vitok.fid import FeatureExtractor
from workflows.training.evaluation import ValBatch, eval_group, evaluate, pixels_to_model_input
from workflows.training.ingest import augment, center_crop


def pixels_of(n_batches=3, b=4, t=1, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (b, t, size, size, 3), dtype=torch.uint8, generator=g) for _ in range(n_batches)]


def pixel_batches(n_batches=3, b=4, t=1, size=16, seed=0, per_group=2):
    """Validation batches whose rows k are sample `s<k>` of scene `g<k // per_group>`."""
    out = []
    for index, batch in enumerate(pixels_of(n_batches, b, t, size, seed)):
        rows = range(index * b, (index + 1) * b)
        out.append(ValBatch(batch, [f"s{k}" for k in rows], [f"g{k // per_group}" for k in rows]))
    return out


def tiny_feature_net() -> FeatureExtractor:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    return FeatureExtractor(net, video=False)


def test_perfect_reconstruction_scores_zero_distance():
    results, grid, _ = evaluate(lambda x: x, pixel_batches(), max_samples=12,
                                feature_nets={"eval_rfid": tiny_feature_net()})
    assert results["eval_samples"] == 12
    assert results["eval_ssim"] == pytest.approx(1.0, abs=1e-4)
    assert results["eval_rfid"] == pytest.approx(0.0, abs=1e-3)
    assert grid.dtype.name == "uint8" and grid.ndim == 3


def test_noisy_reconstruction_scores_worse_and_respects_max_samples():
    noisy = lambda x: (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)  # noqa: E731
    results, _, _ = evaluate(noisy, pixel_batches(), max_samples=6, feature_nets={"eval_rfid": tiny_feature_net()})
    assert results["eval_samples"] == 6
    assert results["eval_psnr"] < 20 and results["eval_rfid"] > 0


def test_no_batches_reports_no_metrics():
    assert evaluate(lambda x: x, [], max_samples=8) == ({"eval_samples": 0.0}, None, None)


def test_pixels_map_to_minus_one_one():
    x = pixels_to_model_input(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2, 1).expand(1, 1, 1, 2, 3))
    assert x.min() == -1 and x.max() == 1


def test_augment_crops_and_flips_whole_tubelets():
    pixels = pixels_of(1, b=8, t=3, size=16)[0]
    out = augment(pixels, crop=8, flip=True, generator=torch.Generator().manual_seed(1))
    assert out.shape == (8, 3, 8, 8, 3)
    for clip, crop in zip(pixels, out):  # every output is a crop of its input, flipped or not, all frames alike
        found = any(
            torch.equal(cand[:, y : y + 8, x : x + 8], crop)
            for cand in (clip, clip.flip(2))
            for y in range(9)
            for x in range(9)
        )
        assert found
    assert torch.equal(augment(pixels, 0, False, torch.Generator()), pixels)


def test_center_crop_is_centred():
    pixels = pixels_of(1, size=10)[0]
    assert torch.equal(center_crop(pixels, 6), pixels[:, :, 2:8, 2:8])
    assert center_crop(pixels, 0) is pixels


def test_results_carry_n_and_a_bootstrap_interval_around_the_mean():
    noisy = lambda x: (x + 0.2 * torch.randn_like(x)).clamp(-1, 1)  # noqa: E731
    results, _, per_sample = evaluate(noisy, pixel_batches(n_batches=4), max_samples=16)
    assert results["eval_samples"] == 16 and results["eval_groups"] == 8
    assert per_sample["sample_id"] == [f"s{k}" for k in range(16)]
    assert per_sample["group"] == [f"g{k // 2}" for k in range(16)]
    assert results["eval_psnr"] == pytest.approx(sum(per_sample["psnr"]) / 16)
    for name in ("psnr", "ssim"):
        assert results[f"eval_{name}_ci_low"] <= results[f"eval_{name}"] <= results[f"eval_{name}_ci_high"]
        assert results[f"eval_{name}_ci_low"] < results[f"eval_{name}_ci_high"]


def test_reconstructions_are_scored_after_uint8_quantisation():
    # an offset of a third of a grey level rounds away: the quantised reconstruction is exact
    results, _, _ = evaluate(lambda x: x + 0.3 / 127.5, pixel_batches(), max_samples=12)
    assert results["eval_ssim"] == pytest.approx(1.0) and results["eval_psnr"] > 100


def _rank_worker(rank: int, world: int, port: int, out) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    calls = []

    def reconstruct(x):
        calls.append(len(x))
        return (x + 0.1).clamp(-1, 1)

    # 3 batches of 4 = 12 rows, at most 11 scored, batch 2 x 2 ranks: rounds of 4, 4, 3 rows
    results, _, per_sample = evaluate(reconstruct, pixel_batches(), max_samples=11, batch_size=2, rank=rank,
                                      world=world, feature_nets={"eval_rfid": tiny_feature_net()})
    out.put((rank, len(calls), results, per_sample))
    dist.destroy_process_group()


def test_ranks_share_the_rows_run_equal_forwards_and_agree_with_one_rank():
    import torch.multiprocessing as mp

    from tests.helpers import free_port

    single, _, single_rows = evaluate(lambda x: (x + 0.1).clamp(-1, 1), pixel_batches(), max_samples=11,
                                      batch_size=2, feature_nets={"eval_rfid": tiny_feature_net()})
    context = mp.get_context("spawn")
    out = context.Queue()
    port = free_port()
    procs = [context.Process(target=_rank_worker, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = {rank: (calls, results, rows) for rank, calls, results, rows in (out.get(timeout=120) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
    assert got[0][0] == got[1][0] == 3  # 3 rounds: rank 1's share of the last (3-row) round is 1 row, still one forward
    for rank in (0, 1):
        results = got[rank][1]
        assert results["eval_samples"] == 11
        for key, value in single.items():
            assert results[key] == pytest.approx(value, rel=1e-6), key  # float64 sums in another order
        assert got[rank][2]["sample_id"] == single_rows["sample_id"]  # gathered back into stream order
        assert got[rank][2]["group"] == single_rows["group"]
        assert got[rank][2]["psnr"] == pytest.approx(single_rows["psnr"], rel=1e-6)


def test_interval_resamples_the_independent_units():
    """Copies of one scene are one unit: four identical crops per scene give the interval of the scenes."""
    shrunk = lambda x: x * 0.9  # noqa: E731  (an error that differs from scene to scene)
    scenes = pixels_of(1, b=4, seed=3)[0]
    copies = scenes.repeat_interleave(4, dim=0)  # 16 rows, four of each scene
    grouped = [ValBatch(copies, [f"s{k}" for k in range(16)], [f"g{k // 4}" for k in range(16)])]
    alone = [ValBatch(copies, [f"s{k}" for k in range(16)], [f"s{k}" for k in range(16)])]
    by_scene, _, _ = evaluate(shrunk, grouped, max_samples=16, batch_size=16)
    by_crop, _, _ = evaluate(shrunk, alone, max_samples=16, batch_size=16)
    assert by_scene["eval_groups"] == 4 and by_crop["eval_groups"] == 16
    assert by_scene["eval_psnr"] == pytest.approx(by_crop["eval_psnr"])
    width = lambda r: r["eval_psnr_ci_high"] - r["eval_psnr_ci_low"]  # noqa: E731
    assert width(by_scene) > 1.5 * width(by_crop)


def test_eval_units_of_a_sample():
    uri, sid = "s3://corpus/img/val/coins/coins_3.jpg", "abc"
    assert eval_group(uri, sid, "source") == uri
    assert eval_group(uri, sid, "folder") == "s3://corpus/img/val/coins"
    assert eval_group(uri, sid, "sample") == "abc"
