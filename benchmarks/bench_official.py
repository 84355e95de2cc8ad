"""This engine against the official HyperLoRA modules, side by side on the same weights.

    python benchmarks/bench_official.py --official /path/to/ComfyUI-HyperLoRA [--dir DIR] [--repeat 5]

``--official`` is a checkout of the official ComfyUI plugin (never vendored here; its modules need
``diffusers``). Both run features -> LoRA for one image (penultimate CLIP hidden states + ArcFace
embedding -> ID projector -> resampler -> basis mixing -> kohya dict) on the same full-size random
checkpoint with the released shapes (built once by ``bench_engine.build_full_checkpoint``).

Prints, in this order: our load (time from the page cache, peak RAM while loading, resident basis
bytes), our features -> LoRA (hypernetwork and mixing split), the floor estimate (basis bytes / this
machine's measured read bandwidth + our resampler time), the official modules in fp32, bf16 and fp16
(load RAM, features -> LoRA), the speed ratio against the official bf16 figure, and the deviation of
each from the official fp32 LoRA (which also checks that both compute the same math).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import VARIANT, build_full_checkpoint, median_time, peak_ram_gb  # noqa: E402

import hyperlora_ext  # noqa: E402
from hyperlora_ext.identities.identity import pool_tokens  # noqa: E402
from hyperlora_ext.model.locations import ModelLocations  # noqa: E402
from hyperlora_ext.model.sdxl_names import to_compvis  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e9


def read_bandwidth(device: str) -> float:
    """GB/s of a read-only pass (sum) over 1 GiB, the access pattern of basis mixing."""
    x = torch.ones(1 << 28, dtype=torch.float32, device=device)
    sec = median_time(x.sum, 7, device.startswith("cuda"))
    return (1 << 30) / sec / 1e9


class Official:
    """The official plugin's modules (hyperlora/modules.py) loaded the way its loader node does."""

    def __init__(self, checkout: Path, folder: Path, dtype: torch.dtype, device: str) -> None:
        from safetensors.torch import load_file

        spec = importlib.util.spec_from_file_location("official_hyperlora_modules",
                                                      checkout / "hyperlora" / "modules.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        info = json.loads((folder / "hyper_lora_modules.json").read_text())
        self.names = list(info)
        self.modules = torch.nn.ModuleList(mod.HyperLoRAModule(128, i["hidden_size"], i["cross_attention_dim"],
                                                               lora_rank=8) for i in info.values())
        self.modules.load_state_dict(load_file(str(folder / "hyper_lora_modules.safetensors")))
        self.modules.to(device, dtype).eval()
        self.resampler = mod.Resampler(dim=1024, depth=4, dim_head=64, heads=12, num_queries=8 * len(info),
                                       embedding_dim=1024, output_dim=128, ff_mult=4, n_conds=2)
        self.resampler.load_state_dict(load_file(str(folder / "resampler.safetensors")))
        self.resampler.to(device, dtype).eval()
        self.id_projector = torch.nn.Sequential(torch.nn.Linear(512, 1024 * 16), mod.Reshape((-1, 16, 1024)),
                                                torch.nn.LayerNorm(1024))
        self.id_projector.load_state_dict(load_file(str(folder / "id_projector.safetensors")))
        self.id_projector.to(device, dtype).eval()
        self.device, self.dtype = device, dtype

    @torch.no_grad()
    def features_to_lora(self, clip: torch.Tensor, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official HyperLoRAIDLoRANode.execute after the CLIP encoder."""
        id_embed = self.id_projector(ids.to(self.device, self.dtype))
        tokens = self.resampler(id_embed, clip.to(self.device, self.dtype)).chunk(len(self.modules), dim=1)
        out = {}
        for name, module, tok in zip(self.names, self.modules, tokens):
            for key, (down, up) in module(tok, mode="id").items():
                out[f"{name}_{key}.alpha"] = torch.tensor(float(down.shape[0])) * 0.5
                out[f"{name}_{key}.lora_down.weight"] = down.cpu()
                out[f"{name}_{key}.lora_up.weight"] = up.cpu()
        return out


def official_in_our_names(lora: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official keys ("<diffusers module>.processor_to_q.lora_down.weight") -> our kohya keys."""
    out = {}
    for key, value in lora.items():
        module, rest = key.split("_to_", 1)
        proj, suffix = rest.split(".", 1)
        out[f"{to_compvis(module)}_to_{proj}.{suffix}"] = value
    return out


def deviation(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> tuple[float, float]:
    errs = [((ours[k].float() - ref[k].float()).norm() / ref[k].float().norm()).item()
            for k in ref if k.endswith("weight")]
    return statistics.median(errs), max(errs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", type=Path, required=True, help="checkout of the official ComfyUI-HyperLoRA")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hyperlora-bench/models"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto", help="our engine's dtype")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    folder = ModelLocations.under(args.dir).hyper_lora / VARIANT
    build_full_checkpoint(folder)
    cuda = args.device.startswith("cuda")
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}; {folder}")
    file_bytes = (folder / "hyper_lora_modules.safetensors").stat().st_size

    # ---- ours: load (twice: the second load reads from the page cache) --------------------------
    for attempt in ("first", "page cache"):
        gc.collect()
        before = rss_gb()
        t = time.perf_counter()
        model = hyperlora_ext.load_model(folder, device=args.device, dtype=args.dtype, offload="resident")
        load = time.perf_counter() - t
        if attempt == "first":
            peak_load = peak_ram_gb() - before
            model = None
    print(f"ours: load {load:.2f} s from the page cache; peak RAM while loading {peak_load:.2f} GB above the "
          f"{before:.2f} GB before; basis resident {model.id_bank.nbytes / 1e9:.2f} GB "
          f"({model.precision.basis}; file {file_bytes / 1e9:.2f} GB); compute {model.precision.compute}")
    g = torch.Generator().manual_seed(1)
    clip = torch.randn(1, 257, 1024, generator=g)
    ids = torch.nn.functional.normalize(torch.randn(1, 512, generator=g), dim=-1)
    ours_lora = model.features_to_lora(clip, ids)
    hyper = median_time(lambda: model.image_tokens(clip, ids), args.repeat, cuda)
    tokens = pool_tokens(model.image_tokens(clip, ids))
    mix = median_time(lambda: model.id_bank.mix(tokens), args.repeat, cuda)
    ours = median_time(lambda: model.features_to_lora(clip, ids), args.repeat, cuda)
    print(f"ours: features -> LoRA {ours * 1000:.0f} ms (hypernetwork {hyper * 1000:.0f} ms, basis mixing "
          f"{mix * 1000:.0f} ms = {model.id_bank.nbytes / mix / 1e9:.1f} GB/s of basis read)")
    basis_bytes = model.id_bank.nbytes
    model = None
    gc.collect()
    bandwidth = read_bandwidth(args.device)
    floor = basis_bytes / bandwidth / 1e9 + hyper
    print(f"floor: {basis_bytes / 1e9:.2f} GB basis / {bandwidth:.1f} GB/s read bandwidth + {hyper * 1000:.0f} ms "
          f"resampler = {floor * 1000:.0f} ms (ours is {ours / floor:.2f}x the floor)")

    # ---- the official modules, same weights ---------------------------------------------------
    reference = None
    figures = {}
    for name in ("fp32", "bf16", "fp16"):
        gc.collect()
        before = rss_gb()
        official = Official(args.official, folder, DTYPES[name], args.device)
        ram = rss_gb() - before
        lora = official_in_our_names(official.features_to_lora(clip, ids))
        repeat = 1 if name == "fp16" and not cuda else args.repeat
        figures[name] = median_time(lambda o=official: o.features_to_lora(clip, ids), repeat, cuda)
        reference = reference or lora
        med, worst = deviation(lora, reference)
        print(f"official {name}: features -> LoRA {figures[name] * 1000:.0f} ms (median of {repeat}); RAM of the "
              f"loaded modules {ram:.2f} GB; vs official fp32: median {med:.4f}, max {worst:.4f}")
        official = None
    med, worst = deviation(ours_lora, reference)
    print(f"ours vs official fp32 LoRA relative error: median {med:.4f}, max {worst:.4f}")
    print(f"speed-up: {figures['bf16'] / ours:.2f}x the official bf16, {figures['fp32'] / ours:.2f}x fp32, "
          f"{figures['fp16'] / ours:.1f}x fp16 (same run, same weights)")
    print(f"peak RAM of this process: {peak_ram_gb():.2f} GB")


if __name__ == "__main__":
    main()
