"""Benchmark what a ``<hyperlora:NAME:w>`` tag costs at generation time (full-size random checkpoint).

    python benchmarks/bench_webui.py [--dir /tmp/hyperlora-bench]

Prints: identity file size and load time; the first activation of an identity (expand the
coefficients into the 560-layer LoRA + convert to the file dtype) with and without a
Base-LoRA-free model already loaded; a cached activation; a Save-as-LoRA. Reuses the
checkpoint (and CLIP, synthetic face pack) that ``bench_engine.py`` builds. Host-side costs
(the WebUI merging the LoRA into its weights) are the WebUI's own and are reported by the
e2e suite's timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import VARIANT, build_full_checkpoint, build_image_stages  # noqa: E402

from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig  # noqa: E402
from hyperlora_ext.app.core.tags import TagRequest  # noqa: E402
from hyperlora_ext.identities.identity import Identity  # noqa: E402
from hyperlora_ext.model.locations import ModelLocations  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hyperlora-bench"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    locs = ModelLocations.under(args.dir / "models")
    build_full_checkpoint(locs.variant_dir(VARIANT))
    build_image_stages(locs)  # the service checks every model file is there before it loads
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServiceConfig(models_dir=locs.root, identities_dir=Path(tmp) / "ids", device=args.device)
        service = HyperLoRAService(lambda: cfg)
        load = timed(lambda: service.models.model(VARIANT))
        model = service.models.model(VARIANT)
        q, k = len(model.spec.lora_names) * 2, model.spec.hyper_dim
        tokens = torch.nn.functional.normalize(torch.randn(q, k), dim=-1)
        identity = Identity(tokens=tokens, variant=VARIANT, model_fingerprint=model.spec.fingerprint, name="bench")
        service.identities.store.save(identity, "bench")
        path = service.identities.store.path("bench")
        read = timed(lambda: Identity.load(path))
        first = timed(lambda: service.resolve([TagRequest("bench", 0.85)]))
        cached = statistics.median(timed(lambda: service.resolve([TagRequest("bench", 0.85)])) for _ in range(5))
        expanded = service.loras._loras  # the cache of expanded weights: cleared for uncached timings
        expanded.clear()
        again = statistics.median(
            [timed(lambda: (expanded.clear(), service.resolve([TagRequest("bench", 0.85)]))) for _ in range(3)])
        save = timed(lambda: service.save_lora("bench", Path(tmp) / "Lora"))
        size = (Path(tmp) / "Lora" / "bench.safetensors").stat().st_size
        print(f"model load: {load:.1f} s (once per session)")
        print(f"identity file: {path.stat().st_size / 1e6:.2f} MB, read {read * 1e3:.1f} ms")
        print(f"tag activation, first use of an identity (expand + fp16): {first * 1e3:.0f} ms; "
              f"median of 3 more uncached: {again * 1e3:.0f} ms")
        print(f"tag activation, cached: {cached * 1e3:.2f} ms")
        print(f"save as LoRA (cached weights): {save * 1e3:.0f} ms, file {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
