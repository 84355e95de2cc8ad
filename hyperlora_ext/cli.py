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
    pr.add_argument("--drop-flagged", action="store_true",
                    help="leave out photos that do not match the others (similarity below the check threshold)")
    dl = sub.add_parser("download", parents=[common], help="download the model files of a variant")
    dl.add_argument("--no-progress", action="store_true", help="hide progress bars")
    mx = sub.add_parser("mix", parents=[common], help="mix identity files, or make a slider from two",
                        description="'0.6*a.safetensors + 0.4*b.safetensors' mixes; 'smiling.safetensors - "
                                    "neutral.safetensors' makes a slider (LoRA(A) - LoRA(B)).")
    mx.add_argument("expression", help="identity files joined by + with optional factors, or A - B")
    mx.add_argument("-o", "--output", type=Path, required=True, help="identity file to write")
    mx.add_argument("--lora", type=Path, default=None, help="also write the LoRA (.safetensors); needs the model")
    mx.add_argument("--overwrite", action="store_true", help="replace existing output files")
    lk = sub.add_parser("likeness", parents=[common], help="ArcFace similarity of the faces in an image")
    lk.add_argument("image", type=Path, help="a generated image")
    lk.add_argument("--identity", type=Path, action="append", required=True, help="identity file (repeatable)")
    return p


def _tool(args, locs) -> int:
    """The ``mix`` and ``likeness`` commands (identity files in, no hypernetwork pass)."""
    from .identity import Identity

    if args.command == "likeness":
        from .faces import FaceAnalyzer
        from .likeness import format_likeness, likeness

        named = {p.stem.removesuffix(".hyperlora"): Identity.load(p) for p in args.identity}
        scores = likeness(FaceAnalyzer(locs.antelopev2), str(args.image), named)
        left_out = [n for n in named if n not in {s.name for s in scores}]
        for name in left_out:
            print(f"{name}: no reference embedding (identity made before likeness scores); re-create it",
                  file=sys.stderr)
        print(format_likeness(scores))
        return 0
    from .identity_algebra import combine, expand_identity, parse_mix

    expr = parse_mix(args.expression)
    identity = combine(expr, {n: Identity.load(n) for n, _ in expr.terms}, name=args.output.stem)
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} already exists; use --overwrite")
    if args.lora:
        from . import load_model, save_lora
        from .lora import lora_metadata

        args.variant = args.variant or identity.variant
        locs.check(args.variant)
        model = load_model(locs.variant_dir(args.variant), device="cpu", dtype="fp32", models_dir=locs.root)
        lora = expand_identity(model, identity)
        meta = lora_metadata(args.lora.stem, lora, {"variant": identity.variant, "identity_hash": identity.hash,
                                                    "expression": str(expr)})
        save_lora(lora, args.lora, meta, preview=identity.preview(), overwrite=args.overwrite)
        print(f"wrote {args.lora}")
    identity.save(args.output)
    parents = ", ".join(f"{p.factor:g}*{p.name} [{p.hash}]" for p in identity.parents)
    print(f"wrote {args.output} ({expr.kind} of {parents}; identity {identity.hash})")
    return 0


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
        if args.command in ("mix", "likeness"):
            return _tool(args, locs)
        if args.download:
            download_models(locs, variant)
        locs.check(variant)
        model = load_model(locs.variant_dir(variant), device=args.device, dtype=args.dtype,
                           models_dir=locs.root)
        from .photo_check import predict_checked

        pred, check = predict_checked(model, [str(p) for p in args.images], drop_flagged=args.drop_flagged,
                                      remove_background=not args.no_remove_background, grayscale=args.grayscale,
                                      name=args.output.stem)
        for photo in check.photos:
            print(f"photo {photo.name}: similarity {photo.similarity:.2f}"
                  + (f" FLAGGED (below {check.threshold})" if photo.flagged else ""))
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
