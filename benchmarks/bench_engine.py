"""Benchmark the core engine on a full-size random checkpoint (official shapes).

    python benchmarks/bench_engine.py [--dir /tmp/hyperlora-bench] [--device cpu|cuda] [--pixels]

Prints: load time; features -> LoRA for 1 and 4 images split into hypernetwork and basis
mixing; basis-mixing throughput next to this machine's memory-copy bandwidth measured in
the same run; the bf16-vs-fp32 deviation; peak RAM (and VRAM on CUDA, with the extra VRAM
left after a prediction in offload mode). With ``--pixels`` also decoded pixels -> LoRA
through a random full-size CLIP ViT-L/14 and the synthetic face pack of the tests (the
face-stage time is therefore not that of the real antelopev2 models), and a repeated request.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import hyperlora_ext  # noqa: E402
from hyperlora_ext.identities.identity import pool_tokens  # noqa: E402
from hyperlora_ext.model.locations import ModelLocations  # noqa: E402

VARIANT = "sdxl_hyper_id_lora_v1_fidelity"


def build_full_checkpoint(folder: Path) -> None:
    """Random weights in the released shapes (fp16, ~3 GB), written once and reused."""
    from builders import _resampler_tensors, full_sdxl_modules

    if (folder / "id_projector.safetensors").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    modules = full_sdxl_modules()
    (folder / "hyper_lora_modules.json").write_text(json.dumps(
        {n + ".processor": {"hidden_size": h, "cross_attention_dim": c} for n, h, c in modules}))
    g = torch.Generator().manual_seed(0)
    basis = {}
    for i, (_, h, c) in enumerate(modules):
        for proj, in_f in zip(("to_q", "to_k", "to_v", "to_out"), (h, c or h, c or h, h)):
            basis[f"{i}.{proj}.id_down_basis"] = (torch.randn(128, in_f, 8, generator=g) * 0.02).half()
            basis[f"{i}.{proj}.id_up_basis"] = (torch.randn(128, 8, h, generator=g) * 0.02).half()
    save_file(basis, str(folder / "hyper_lora_modules.safetensors"))
    del basis
    res = _resampler_tensors(g, 1024, 4, 768, 4, 8 * len(modules), 1024, 1024, 128)
    res = {k: v * (0.1 if k.endswith("weight") and v.ndim == 2 else 1.0) for k, v in res.items()}
    save_file({k: v.half() for k, v in res.items()}, str(folder / "resampler.safetensors"))
    proj = {"0.weight": torch.randn(16 * 1024, 512, generator=g) * 0.05, "0.bias": torch.zeros(16 * 1024),
            "2.weight": torch.ones(1024), "2.bias": torch.zeros(1024)}
    save_file({k: v.half() for k, v in proj.items()}, str(folder / "id_projector.safetensors"))


def build_full_clip(locs: ModelLocations) -> None:
    if (locs.clip_vit / "config.json").exists():
        return
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                           image_size=224, patch_size=14, projection_dim=768)
    CLIPVisionModelWithProjection(cfg).half().save_pretrained(str(locs.clip_vit), safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(
        str(locs.clip_processor))


def build_image_stages(locs: ModelLocations) -> None:
    """A random full-size CLIP ViT-L/14 and the tests' synthetic face pack (each built once)."""
    from face_pack import build_face_pack

    build_full_clip(locs)
    if not (locs.antelopev2 / "glintr100.onnx").exists():
        build_face_pack(locs.antelopev2)


def median_time(fn, repeat: int, sync: bool) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def copy_bandwidth(device: str) -> float:
    """GB/s of memory traffic (read + write) for a 1 GiB tensor copy."""
    src = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sec = median_time(lambda: dst.copy_(src), 5, device == "cuda")
    return 2 * src.numel() / sec / 1e9


def peak_ram_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hyperlora-bench/models"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--pixels", action="store_true")
    ap.add_argument("--compare-fp32", action="store_true", help="also time float32 compute and report the deviation")
    args = ap.parse_args()
    locs = ModelLocations.under(args.dir)
    folder = locs.hyper_lora / VARIANT
    t = time.perf_counter()
    build_full_checkpoint(folder)
    print(f"checkpoint ready in {time.perf_counter() - t:.1f} s: {folder}")
    cuda = args.device.startswith("cuda")
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"memory copy bandwidth: {copy_bandwidth(args.device):.1f} GB/s (read + write)")

    t = time.perf_counter()
    model = hyperlora_ext.load_model(folder, device=args.device, dtype=args.dtype, offload="resident")
    print(f"load: {time.perf_counter() - t:.2f} s; compute {model.precision.compute}, basis {model.precision.basis}; "
          f"basis bytes {model.id_bank.nbytes / 1e9:.2f} GB")
    g = torch.Generator().manual_seed(1)
    results = {}
    for n in (1, 4):
        clip = torch.randn(n, 257, 1024, generator=g)
        ids = torch.nn.functional.normalize(torch.randn(n, 512, generator=g), dim=-1)
        model.features_to_lora(clip, ids)  # warm-up
        hyper = median_time(lambda c=clip, i=ids: model.image_tokens(c, i), args.repeat, cuda)
        tokens = pool_tokens(model.image_tokens(clip, ids))
        mix = median_time(lambda t=tokens: model.id_bank.mix(t), args.repeat, cuda)
        total = median_time(lambda c=clip, i=ids: model.features_to_lora(c, i), args.repeat, cuda)
        results[n] = (clip, ids)
        print(f"{n} image(s): features -> LoRA {total * 1000:.0f} ms (hypernetwork {hyper * 1000:.0f} ms, "
              f"basis mixing {mix * 1000:.0f} ms = {model.id_bank.nbytes / mix / 1e9:.1f} GB/s read)")
    if args.compare_fp32 and model.precision.compute != torch.float32:
        clip, ids = results[1]
        fast = model.features_to_lora(clip, ids)
        del model
        ref_model = hyperlora_ext.load_model(folder, device=args.device, dtype="fp32", offload="resident")
        ref = ref_model.features_to_lora(clip, ids)
        t32 = median_time(lambda: ref_model.features_to_lora(clip, ids), 3, cuda)
        errs = [((fast[k].float() - ref[k].float()).norm() / ref[k].float().norm()).item()
                for k in ref if k.endswith("weight")]
        print(f"float32 compute: features -> LoRA {t32 * 1000:.0f} ms; "
              f"{args.dtype} vs float32 LoRA relative error: median {statistics.median(errs):.4f}, max {max(errs):.4f}")
        model = ref_model
    if args.pixels:
        from face_pack import face_image

        build_image_stages(locs)
        model.face_models.locations = locs
        photo = face_image((1024, 1024), faces=[(512, 480, 150)], seed=2)
        model.predict([photo], name="warm")
        model.clear_cache()
        stages = []
        for i in range(args.repeat):
            model.clear_cache()
            img = hyperlora_ext.load_image(photo.rotate(0.0 + i * 1e-3), "photo")
            t = time.perf_counter()
            pred = model.predict([img])
            model.expand(pred.identity, device=args.device)
            stages.append((time.perf_counter() - t, pred.timings))
        total, timings = sorted(stages, key=lambda s: s[0])[len(stages) // 2]
        detail = ", ".join(f"{k} {v * 1000:.0f}" for k, v in timings.items())
        print(f"decoded pixels -> LoRA (1 image): {total * 1000:.0f} ms [{detail} ms; + mixing]")
        again = median_time(lambda: model.expand(model.predict([img]).identity, device=args.device),
                            args.repeat, cuda)
        print(f"repeated request (cache hit) -> LoRA: {again * 1000:.1f} ms")
    print(f"peak RAM: {peak_ram_gb():.2f} GB")
    if cuda:
        print(f"peak VRAM: {torch.cuda.max_memory_allocated() / 1e9:.2f} GB")
        del model
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated()
        off = hyperlora_ext.load_model(folder, device=args.device, dtype=args.dtype, offload="offload")
        clip, ids = results[1]
        off.features_to_lora(clip, ids)
        extra = (torch.cuda.memory_allocated() - before) / 1e6
        print(f"offload mode: extra VRAM left after a prediction {extra:.1f} MB")


if __name__ == "__main__":
    main()
