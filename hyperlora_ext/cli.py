"""Command line: ``python -m hyperlora_ext predict FACE.jpg [...] -o NAME.safetensors``.

``likeness IMAGE --identity a.safetensors --identity b.safetensors`` prints the infotext's form,
``a 0.71 (face 1), b 0.66 (face 2)`` (each identity on its own face, faces numbered left to right;
``no face`` for one left without); ``--json`` prints ``photos.likeness.likeness_json`` instead:
per identity its name, score, face number and face box [x1, y1, x2, y2] in pixels (null without a face).

Failures print ``error: ...`` (no traceback unless ``--debug``); third-party log noise is
hidden unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, TextIO

from .errors import HyperLoRAError
from .version import __version__

if TYPE_CHECKING:  # annotations only: the commands import what they need when they run
    from .model.locations import ModelLocations

SHORT_VARIANTS = {"fidelity": "sdxl_hyper_id_lora_v1_fidelity", "edit": "sdxl_hyper_id_lora_v1_edit"}
NOISY_LOGGERS = ("transformers", "insightface", "onnxruntime", "huggingface_hub", "accelerate", "torch")
QUIET_ENV = {"TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hyperlora_ext",
                                description="HyperLoRA: face photos -> SDXL identity LoRA, no training.")
    p.add_argument("--version", action="version", version=f"sd-webui-hyperlora {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models-dir", type=Path, default=None,
                        help="WebUI models folder holding hyper_lora/ and insightface/ (default: "
                             "$HYPERLORA_MODELS_DIR or ./models)")
    common.add_argument("--variant", default=None,
                        help="fidelity, edit, or a checkpoint folder name under models/hyper_lora/hyper_lora "
                             "(default: sdxl_hyper_id_lora_v1_fidelity, or the only one present)")
    common.add_argument("--verbose", action="store_true",
                        help="show the log output of transformers, insightface, onnxruntime and huggingface_hub")
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
    pr.add_argument("--card-weight", type=float, default=None,
                    help="the weight a click on the file's card in the WebUI's Lora tab inserts (its NAME.json; "
                         "default 0.85)")
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
    mx.add_argument("--card-weight", type=float, default=None,
                    help="with --lora: the weight a click on its card in the WebUI's Lora tab inserts (default 0.85)")
    lk = sub.add_parser("likeness", parents=[common], help="ArcFace similarity of the faces in an image")
    lk.add_argument("image", type=Path, help="a generated image")
    lk.add_argument("--identity", type=Path, action="append", required=True,
                    help="identity file (repeatable); each identity is scored on its own face")
    lk.add_argument("--json", action="store_true",
                    help="print JSON: per identity its name, score, face number and face box (pixels)")
    return p


def _tool(args: argparse.Namespace, locs: ModelLocations, out: TextIO) -> int:
    """The ``mix`` and ``likeness`` commands (identity files in, no hypernetwork pass)."""
    from .identities.identity import Identity

    if args.command == "likeness":
        from .photos.faces import FaceAnalyzer
        from .photos.likeness import format_likeness, likeness, likeness_json, unscored

        named = {p.stem.removesuffix(".hyperlora"): Identity.load(p) for p in args.identity}
        scores = likeness(FaceAnalyzer(locs.antelopev2), str(args.image), named)
        skipped = unscored(named)
        for name, reason in skipped.items():
            print(f"{name}: {reason}", file=sys.stderr)
        print(json.dumps(likeness_json(scores, skipped)) if args.json else format_likeness(scores), file=out)
        return 0
    from .identities.algebra import combine, parse_mix

    expr = parse_mix(args.expression)
    identity = combine(expr, {n: Identity.load(n) for n, _ in expr.terms}, name=args.output.stem)
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} already exists; use --overwrite")
    if args.lora:
        from . import load_model
        from .identities.lora_card import save_identity_lora

        args.variant = args.variant or identity.variant
        locs.check(args.variant)
        model = load_model(locs.variant_dir(args.variant), device="cpu", dtype="fp32", models_dir=locs.root)
        save_identity_lora(model.expand(identity), args.lora, identity, _card_weight(args),
                           extra={"expression": str(expr)}, overwrite=args.overwrite)
        print(f"wrote {args.lora}", file=out)
    identity.save(args.output)
    parents = ", ".join(f"{p.factor:g}*{p.name} [{p.hash}]" for p in identity.parents)
    print(f"wrote {args.output} ({expr.kind} of {parents}; identity {identity.hash})", file=out)
    return 0


def _locations(args: argparse.Namespace) -> tuple[ModelLocations, str]:
    from .model.locations import DEFAULT_VARIANT, ModelLocations

    locs = ModelLocations.under(args.models_dir) if args.models_dir else ModelLocations.default()
    variant = args.variant
    if variant is None:
        present = locs.variants()
        variant = present[0] if len(present) == 1 else DEFAULT_VARIANT
    return locs, SHORT_VARIANTS.get(variant.lower(), variant)


@contextlib.contextmanager
def quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """Hide third-party noise while the block runs, unless ``verbose``: their loggers below ERROR,
    warnings not raised by this package, transformers' progress bars, ONNX Runtime's native log,
    and everything printed to stdout (insightface's "find model:", "set det-size:" ...).
    Print your own output to the stdout saved before entering. Restores all of it on exit."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        yield
        return
    saved_env = {k: os.environ.get(k) for k in QUIET_ENV}
    saved_levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    os.environ.update(QUIET_ENV)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    tf_logging: Any = None  # transformers' logging, when it is installed
    try:
        from transformers.utils import logging as transformers_logging

        tf_logging = transformers_logging
        tf_level, tf_bars = tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled()
        tf_logging.set_verbosity_error()
        tf_logging.disable_progress_bar()  # "Loading weights" (downloads keep huggingface_hub's bars)
    except ImportError:
        tf_logging = None
    try:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    except ImportError:
        onnxruntime = None
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", module=r"hyperlora_ext(\.|$)")
            yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        if tf_logging is not None:
            tf_logging.set_verbosity(tf_level)
            if tf_bars:
                tf_logging.enable_progress_bar()
        if onnxruntime is not None:
            onnxruntime.set_default_logger_severity(2)


class _Step:
    """What the command is doing, for the message of an unexpected error."""

    now = "starting"


def _card_weight(args: argparse.Namespace) -> float:
    from .lora import RECOMMENDED_WEIGHT

    return RECOMMENDED_WEIGHT if args.card_weight is None else args.card_weight


def _run(args: argparse.Namespace, out: TextIO, step: _Step) -> int:
    step.now = "finding the model files"
    locs, variant = _locations(args)
    from . import load_model
    from .download import download_models
    from .identities.lora_card import save_identity_lora

    if args.command == "download":
        step.now = f"downloading {variant}"
        for path in download_models(locs, variant, progress=not args.no_progress):
            print(f"downloaded {path}", file=out)
        locs.check(variant)
        print(f"all files for {variant} are in place under {locs.root}", file=out)
        return 0
    if args.command in ("mix", "likeness"):
        step.now = f"running {args.command}"
        return _tool(args, locs, out)
    if args.download:
        step.now = f"downloading {variant}"
        download_models(locs, variant)
    locs.check(variant)
    step.now = f"loading {variant}"
    model = load_model(locs.variant_dir(variant), device=args.device, dtype=args.dtype, models_dir=locs.root)
    step.now = "predicting from the photos"
    from .model.pipeline import predict_checked

    pred, check = predict_checked(model, [str(p) for p in args.images], drop_flagged=args.drop_flagged,
                                  remove_background=not args.no_remove_background, grayscale=args.grayscale,
                                  name=args.output.stem)
    for photo in check.photos:
        print(f"photo {photo.name}: similarity {photo.similarity:.2f}"
              + (f" FLAGGED (below {check.threshold})" if photo.flagged else ""), file=out)
    for name, reason in pred.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    identity = pred.identity
    step.now = "building the LoRA"
    lora = model.expand(identity, base_weight=args.base_weight)
    step.now = f"writing {args.output}"
    save_identity_lora(lora, args.output, identity, _card_weight(args), args.base_weight,
                       extra={"sources": ",".join(identity.source_digests)}, overwrite=args.overwrite)
    if args.save_identity:
        step.now = f"writing {args.save_identity}"
        identity.save(args.save_identity)
    timings = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in pred.timings.items())
    print(f"wrote {args.output} from {len(pred.faces)} image(s) [identity {identity.hash}; {timings}]", file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input or models, 1 unexpected)."""
    args = _parser().parse_args(argv)
    out, step = sys.stdout, _Step()
    try:
        with quiet_libraries(args.verbose):
            return _run(args, out, step)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (HyperLoRAError, FileExistsError, ValueError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f"error: {step.now} failed: {type(exc).__name__}: {exc} (run again with --debug for the "
              "traceback)", file=sys.stderr)
        return 1
