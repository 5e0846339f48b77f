"""Latent cache: batch inference of an exported tokenizer over tubelet shards (a Ray Data actor pool) into
latent shards, manifest.json and latent_stats.json, exactly once with data prep's unit kit
(data_prep/exactly_once/).

Entry point: pipeline.cache_latents() with params.CacheOptions (errors.LatentsError for bad input);
schema.to_float32() reads stored latents back, latent_manifest.read_latent_manifest() the manifest. Entry
script: workflows/cache_latents.py. Nothing is imported here, so the tokenizer actors load only what they
use (no MLflow, no registry code).
"""
