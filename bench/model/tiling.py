"""Tiled and chunked inference (vitok/tiling.py): memory, throughput and quality against input size.

    python bench/model/tiling.py          # images 256-2048 px, videos 16-256 frames at 256x256: minutes on 2 cores
    python bench/model/tiling.py --full   # images up to 4096 px, videos up to 1024 frames
    python bench/model/tiling.py --quick  # smoke: the smallest cases only
    python bench/model/tiling.py --acceptance   # also 112 frames at 1280x720 against the 2.5 GB target
    python bench/model/tiling.py --quality-only --model work/best_model --train-size 64   # an exported tokenizer

Prints one JSON object: where and when it ran (bench/harness.py), then
- memory: peak RSS and throughput of one reconstruction (encode + decode) per input size, tiled and whole,
  each in its own child process pinned to one core (so peaks do not mix). Random-init tiny models (N-N/16
  for images, N-N/4x16 for videos, 256-pixel tiles, 16-frame chunks): memory and speed do not depend on
  the weights, and the JSON says so;
- quality: a tiny N-N/8 trained in this run for a few hundred steps on 32x32 crops of the sample corpus's
  training photographs (its training size; random weights reconstruct nothing, so their seams say nothing),
  or the exported tokenizer given with `--model DIR --train-size N` (for example one the demo trained, at 64).
  It reconstructs the sample corpus's six held-out photographs (scenes no tokenizer here trains on) at 2 to 8
  times its training size (short side; the photo's aspect kept) and smooth test images of the same sides
  (where seams would show): PSNR of tiled against whole-image reconstruction and against the input, and the
  seam ratio (vitok.tiling.seam_ratio: step energy across tile edges over other patch edges; about 1 =
  invisible), with and without overlap. Photos give the mean over the six and its range.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.harness import environment, measure_child  # noqa: E402

from data_prep.sample_corpus import SOURCES, TRAIN, VAL, skimage_data_dir  # noqa: E402
from vitok import ViTok  # noqa: E402
from vitok.tiling import FrameLayout, Tiling, reconstruct_stream, seam_ratio, to_uint8  # noqa: E402

IMAGE_MODEL, VIDEO_MODEL, QUALITY_MODEL = "N-N/16", "N-N/4x16", "N-N/8"
TRAIN_SIZE, TRAIN_STEPS = 32, 300
SIZES = {"quick": ([256, 512], [16, 32]), "default": ([256, 512, 1024, 2048], [16, 64, 256]),
         "full": ([256, 512, 1024, 2048, 4096], [16, 64, 256, 1024])}
WHOLE_MAX_PIXELS = 1024 * 1024  # whole-image attention beyond this needs many GiB on CPU: tiled only
WHOLE_MAX_FRAMES = 64
WHOLE_MAX_TOKENS = 16384  # quality: larger images are reconstructed in tiles only


def smooth_images(count: int, height: int, width: int, seed: int) -> torch.Tensor:
    """(count, 1, H, W, 3) in [-1, 1]: sums of three random low-frequency plane waves per channel."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.linspace(0, 1, height)[:, None], torch.linspace(0, 1, width)[None, :]
    freq, phase = torch.rand(count, 3, 3, 2, generator=g) * 6, torch.rand(count, 3, 3, generator=g) * 6.3
    waves = [torch.sin(freq[:, :, k, 0, None, None] * x + freq[:, :, k, 1, None, None] * y
                       + phase[:, :, k, None, None]) for k in range(3)]
    return (sum(waves) / 3).permute(0, 2, 3, 1)[:, None]


def corpus_photos(split: str) -> list[Image.Image]:
    """The sample corpus's photographs of one split (data_prep/sample_corpus.py: the scenes the corpus's crops
    and clips are made of), in RGB and at full size; the first photograph of a stereo pair."""
    folder = skimage_data_dir()
    paths = [os.path.join(folder, s.photos[0]) for s in SOURCES if s.split == split]
    return [Image.open(p).convert("RGB") for p in paths if os.path.isfile(p)]


def photo_crops(photos: list[Image.Image], count: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """(count, 1, size, size, 3) in [-1, 1]: square crops of random scale and position, resized to `size`."""
    crops = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        short = min(photo.size)
        side = rng.uniform(min(short, 4 * size), short)
        left, top = rng.uniform(0, photo.width - side), rng.uniform(0, photo.height - side)
        crop = photo.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))
        crops.append(np.asarray(crop))
    return torch.from_numpy(np.stack(crops)).float().div(127.5).sub(1)[:, None]


def train_briefly(name: str = QUALITY_MODEL, steps: int = TRAIN_STEPS, size: int = TRAIN_SIZE, seed: int = 0,
                  batches: Callable[[int], torch.Tensor] | None = None) -> ViTok:
    """A tiny tokenizer fitted with MSE (eval mode) to `batches(step)`, by default 8 crops of `size` pixels of the
    sample corpus's training photographs per step."""
    torch.manual_seed(seed)
    if batches is None:
        rng, photos = np.random.default_rng(seed), corpus_photos(TRAIN)
        batches = lambda step: photo_crops(photos, 8, size, rng)  # noqa: E731
    model = ViTok.from_name(name, channels=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        x = batches(step)
        loss = ((model(x, sample=False).recon - x) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return round(10 * np.log10(255**2 / mse), 2) if mse else float("inf")


def child(kind: str, size: str, mode: str, model_dir: str, height: str = "256", width: str = "256") -> dict:
    """One reconstruction in this process: an image of size x size, or `size` frames of height x width."""
    model = ViTok.from_pretrained(model_dir)
    tiling = (Tiling() if mode == "tiled" else Tiling(tile=0, chunk=0)).resolve(model)
    h, w = (int(size), int(size)) if kind == "image" else (int(height), int(width))
    frame = to_uint8(smooth_images(1, h, w, seed=1)[0, 0])
    frames = [frame] if kind == "image" else (np.roll(frame, i, axis=1) for i in range(int(size)))
    start = time.perf_counter()
    count = sum(1 for _ in reconstruct_stream(model, frames, tiling))  # frames are generated as they are read
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "megapixels_per_s": round(count * h * w / seconds / 1e6, 3)}


def memory_rows(kind: str, sizes: list[int], model_dir: str, core: int) -> list[dict]:
    rows = []
    for size in sizes:
        whole_fits = size * size <= WHOLE_MAX_PIXELS if kind == "image" else size <= WHOLE_MAX_FRAMES
        for mode in ("tiled", "whole") if whole_fits else ("tiled",):
            label = {"image": f"{size}x{size}", "video": f"{size}x256x256"}[kind]
            result = measure_child(__file__, [kind, str(size), mode, model_dir], [core])
            rows.append({"input": label, "mode": mode, **result})
    return rows


def compare(model: ViTok, image: np.ndarray, tile: int) -> dict:
    """One uint8 image reconstructed whole (when its tokens fit WHOLE_MAX_TOKENS) and in tiles of `tile`
    pixels without and with tile/4 overlap: PSNRs and seam ratios."""
    patch = model.config.patch_size
    whole_fits = image.shape[0] * image.shape[1] // patch**2 <= WHOLE_MAX_TOKENS
    whole = next(reconstruct_stream(model, [image], Tiling(tile=0).resolve(model))) if whole_fits else None
    row = {"psnr_whole_vs_input": psnr(whole, image) if whole_fits else None}
    for overlap in (0, tile // 4):
        tiling = Tiling(tile=tile, overlap=overlap).resolve(model)
        tiled = next(reconstruct_stream(model, [image], tiling))
        layout = FrameLayout.plan(image.shape[0], image.shape[1], tiling, patch)
        row[f"overlap_{overlap}"] = {
            "psnr_tiled_vs_input": psnr(tiled, image),
            "psnr_tiled_vs_whole": psnr(tiled, whole) if whole_fits else None,
            "seam_ratio": round(seam_ratio(tiled, layout, patch), 3),
            "seam_ratio_of_whole_at_same_edges": round(seam_ratio(whole, layout, patch), 3) if whole_fits else None}
    return row


def summarise(rows: list[dict]) -> dict:
    """The rows of several images as the mean of each figure and its range [min, max] (n = len(rows))."""
    if isinstance(rows[0], dict):
        return {key: summarise([r[key] for r in rows]) for key in rows[0]}
    if rows[0] is None:
        return None
    return {"mean": round(float(np.mean(rows)), 3), "range": [min(rows), max(rows)]}


def resized(photo: Image.Image, short_side: int) -> np.ndarray:
    """The photo scaled so its short side is `short_side` pixels, aspect kept."""
    scale = short_side / min(photo.size)
    size = (max(short_side, round(photo.width * scale)), max(short_side, round(photo.height * scale)))
    return np.asarray(photo.resize(size, Image.Resampling.LANCZOS))


def quality_rows(model: ViTok, train_size: int, factors: list[int]) -> dict:
    photos = corpus_photos(VAL)
    rows = {"photos": [], "smooth": []}
    for factor in factors:
        side = train_size * factor
        per_photo = [compare(model, resized(photo, side), train_size) for photo in photos]
        rows["photos"].append({"short_side": side, "times_training_size": factor, "tile": train_size,
                               "n": len(per_photo), **summarise(per_photo)})
        image = to_uint8(smooth_images(1, side, side, seed=factor)[0, 0])
        rows["smooth"].append({"size": f"{side}x{side}", "times_training_size": factor, "tile": train_size,
                               **compare(model, image, train_size)})
    return rows


def memory_report(args: argparse.Namespace) -> dict:
    image_sizes, video_frames = SIZES["quick" if args.quick else "full" if args.full else "default"]
    core = sorted(os.sched_getaffinity(0))[-1]
    with tempfile.TemporaryDirectory() as tmp:
        for name in (IMAGE_MODEL, VIDEO_MODEL):
            torch.manual_seed(0)
            ViTok.from_name(name, channels=16).save_pretrained(Path(tmp) / name.replace("/", "_"))
        report = {
            "models": {"image": f"{IMAGE_MODEL} random init", "video": f"{VIDEO_MODEL} random init",
                       "note": "memory and throughput only; the weights are random, the outputs meaningless"},
            "tiling": "256 px tiles, 32 px overlap, 16-frame chunks, 4-frame overlap; whole: one tile, one chunk",
            "images": memory_rows("image", image_sizes, str(Path(tmp) / IMAGE_MODEL.replace("/", "_")), core),
            "videos": memory_rows("video", video_frames, str(Path(tmp) / VIDEO_MODEL.replace("/", "_")), core)}
        if args.acceptance:  # the target: a 1280x720 clip of 100+ frames within 2.5 GB on CPU
            video_dir = str(Path(tmp) / VIDEO_MODEL.replace("/", "_"))
            result = measure_child(__file__, ["video", "112", "tiled", video_dir, "720", "1280"], [core])
            report["acceptance"] = {"input": "112x720x1280", "mode": "tiled", "target_peak_mb": 2500,
                                    **result, "within_target": result["peak_rss_mb"] <= 2500}
    return report


def quality_report(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    if args.model:
        model, train_size = ViTok.from_pretrained(args.model).eval(), args.train_size
        described = f"{model.config.name} from {args.model}, trained at {train_size} px (--train-size)"
    else:
        model, train_size = train_briefly(), TRAIN_SIZE
        described = (f"{QUALITY_MODEL} trained in this run: {TRAIN_STEPS} AdamW steps, batch 8, MSE, {TRAIN_SIZE}x"
                     f"{TRAIN_SIZE} crops of the sample corpus's training photographs "
                     f"({time.perf_counter() - started:.0f} s)")
    with torch.inference_mode():
        rows = quality_rows(model, train_size, [2, 4] if args.quick else [2, 4, 8])
    return {"model": described, "whole_max_tokens": WHOLE_MAX_TOKENS, **rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true", help="smallest cases only (a smoke run)")
    scale.add_argument("--full", action="store_true", help="images to 4096 px, videos to 1024 frames")
    parser.add_argument("--acceptance", action="store_true", help="also a 1280x720 clip of 112 frames, tiled")
    parser.add_argument("--quality-only", action="store_true", help="skip the memory and throughput cases")
    parser.add_argument("--model", help="an exported tokenizer folder for the quality cases (default: train one)")
    parser.add_argument("--train-size", type=int, default=64, help="the --model's training size in pixels")
    args = parser.parse_args()
    if args.model and not Path(args.model, "model.safetensors").is_file():
        parser.error(f"--model {args.model}: no model.safetensors there")
    report = {**environment(["vitok", "bench/model/tiling.py"]), "torch": torch.__version__}
    if not args.quality_only:
        report["memory"] = memory_report(args)
    report["quality"] = quality_report(args)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        os.sched_setaffinity(0, json.loads(sys.argv[2]))
        torch.set_num_threads(len(json.loads(sys.argv[2])))
        print(json.dumps(child(*sys.argv[3:])))
    else:
        sys.exit(main())
