"""Command line: ``python -m hyperlora_ext predict FACE.jpg [...] -o NAME.safetensors``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import HyperLoRAError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hyperlora_ext",
                                description="HyperLoRA: face photos -> SDXL identity LoRA, no training.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models-dir", type=Path, default=None,
                        help="WebUI models folder holding hyper_lora/ and insightface/ (default: "
                             "$HYPERLORA_MODELS_DIR or ./models)")
    common.add_argument("--variant", default=None,
                        help="checkpoint folder name under models/hyper_lora/hyper_lora "
                             "(default: sdxl_hyper_id_lora_v1_fidelity, or the only one present)")
    pr = sub.add_parser("predict", parents=[common], help="predict a LoRA from photos of one person")
    pr.add_argument("images", nargs="+", type=Path, help="photos of the same person (averaged)")
    pr.add_argument("-o", "--output", type=Path, required=True, help="LoRA file to write (.safetensors)")
    pr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    pr.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    pr.add_argument("--no-remove-background", action="store_true", help="keep the photo background")
    pr.add_argument("--grayscale", action="store_true", help="feed CLIP a grayscale face")
    pr.add_argument("--base-weight", type=float, default=0.0,
                    help="bake the Base-LoRA in at this weight (checkpoints with Base-LoRA only)")
    pr.add_argument("--save-identity", type=Path, default=None, help="also write the identity file")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    pr.add_argument("--download", action="store_true", help="download missing model files first")
    dl = sub.add_parser("download", parents=[common], help="download the model files of a variant")
    dl.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def _locations(args):
    from .models import DEFAULT_VARIANT, ModelLocations

    locs = ModelLocations.under(args.models_dir) if args.models_dir else ModelLocations.default()
    variant = args.variant
    if variant is None:
        present = locs.variants()
        variant = present[0] if len(present) == 1 else DEFAULT_VARIANT
    return locs, variant


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import load_model, save_lora
    from .lora import lora_metadata
    from .models import download_models

    locs, variant = _locations(args)
    try:
        if args.command == "download":
            for path in download_models(locs, variant, progress=not args.no_progress):
                print(f"downloaded {path}")
            locs.check(variant)
            print(f"all files for {variant} are in place under {locs.root}")
            return 0
        if args.download:
            download_models(locs, variant)
        locs.check(variant)
        model = load_model(locs.variant_dir(variant), device=args.device, dtype=args.dtype,
                           models_dir=locs.root)
        pred = model.predict([str(p) for p in args.images], remove_background=not args.no_remove_background,
                             grayscale=args.grayscale, name=args.output.stem)
        for name, reason in pred.skipped.items():
            print(f"skipped {name}: {reason}", file=sys.stderr)
        identity = pred.identity
        lora = model.expand(identity, base_weight=args.base_weight)
        meta = lora_metadata(args.output.stem, lora, {
            "variant": identity.variant, "identity_hash": identity.hash, "base_weight": args.base_weight,
            "sources": ",".join(identity.source_digests)})
        save_lora(lora, args.output, meta, preview=identity.preview(), overwrite=args.overwrite)
        if args.save_identity:
            identity.save(args.save_identity)
        timings = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in pred.timings.items())
        print(f"wrote {args.output} from {len(pred.faces)} image(s) [identity {identity.hash}; {timings}]")
        return 0
    except (HyperLoRAError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
