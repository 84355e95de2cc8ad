"""Cost of the likeness score the WebUI adds to every image that applied an identity.

    python benchmarks/bench_likeness.py [--dir DIR] [--size 1024] [--repeat 7] [--antelopev2 DIR]

Times ``likeness.likeness`` (face detection + ArcFace on every face + cosine + assignment) on one
generated-size image holding one face, for one and for four identities (one face: three of the four
get ``no face``); then the same score through the WebUI path (``app.likeness_infotext.annotate``,
what the script runs after each final image: identity lookup in the folder, the model that made
them, the score, the infotext), which should cost within 10 % of it. By default the face models are
the tests' synthetic antelopev2 pack (so the figure is the pipeline's overhead, not the real
networks' cost); ``--antelopev2`` points at a real pack for the real figure. ONNX Runtime's
providers: CPU unless
``--providers`` names others (e.g. CUDAExecutionProvider).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from builders import CLIP_DIM, make_checkpoint, make_clip  # noqa: E402
from face_pack import build_face_pack, face_image  # noqa: E402
from host_shapes import Processing  # noqa: E402

from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig  # noqa: E402
from hyperlora_ext.app.generation.likeness_infotext import LIKENESS_KEY, annotate  # noqa: E402
from hyperlora_ext.identities.identity import Identity  # noqa: E402
from hyperlora_ext.model.locations import ModelLocations  # noqa: E402
from hyperlora_ext.photos.faces import FaceAnalyzer  # noqa: E402
from hyperlora_ext.photos.likeness import format_likeness, likeness  # noqa: E402


def webui_path(args, pack: Path, image) -> None:
    """The same score through the WebUI's per-image annotation, against the core call it makes."""
    locs = ModelLocations.under(args.dir / "models")
    if not (locs.hyper_lora / "bench").exists():
        make_clip(locs.clip_vit, locs.clip_processor, hidden=CLIP_DIM)
        make_checkpoint(locs.hyper_lora / "bench", clip_dim=CLIP_DIM, seed=1)
    if not locs.antelopev2.exists():
        locs.antelopev2.parent.mkdir(parents=True, exist_ok=True)
        locs.antelopev2.symlink_to(pack.resolve(), target_is_directory=True)
    cfg = ServiceConfig(models_dir=locs.root, identities_dir=args.dir / "identities", device="cpu", dtype="fp32",
                        allow_download=False, providers=tuple(args.providers.split(",")))
    service = HyperLoRAService(lambda: cfg)
    names = [f"person{i}" for i in range(4)]
    for i, name in enumerate(names):
        service.create_identity([face_image(pattern=20 * i - 30, seed=10 + i)], name, "bench", overwrite=True)
    for n in (1, 4):
        compare_paths(service, names[:n], image, args.repeat)


def compare_paths(service: HyperLoRAService, names: list[str], image, repeat: int) -> None:
    """Median time of the core ``likeness`` call and of ``annotate`` (the WebUI path), interleaved."""
    applied = {name: service.identities.get(name).hash for name in names}
    identities = [service.identities.get(name) for name in names]
    analyzer = service.models.face_models().analyzer()

    def core() -> None:
        likeness(analyzer, image, identities)

    def webui() -> None:
        p = Processing(prompts=["x"])
        p.hyperlora_applied = dict(applied)
        annotate(service, p, image)
        assert LIKENESS_KEY in p.extra_generation_params

    times: dict = {core: [], webui: []}
    core(), webui()  # warm-up
    for _ in range(repeat):
        for run in (core, webui):
            t = time.perf_counter()
            run()
            times[run].append(time.perf_counter() - t)
    c, w = (statistics.median(times[f]) * 1000 for f in (core, webui))
    print(f"WebUI path, {len(names)} identit{'y' if len(names) == 1 else 'ies'}: annotate {w:.1f} ms vs core "
          f"likeness {c:.1f} ms (medians of {repeat}, interleaved): {100 * (w / c - 1):+.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hyperlora-bench/likeness"))
    ap.add_argument("--antelopev2", type=Path, default=None, help="a real antelopev2 folder (default: synthetic)")
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (SDXL: 1024)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--providers", default="CPUExecutionProvider")
    args = ap.parse_args()
    pack = args.antelopev2
    if pack is None:
        pack = args.dir / "antelopev2"
        if not (pack / "glintr100.onnx").exists():
            build_face_pack(pack)
    analyzer = FaceAnalyzer(pack, providers=args.providers.split(","))
    image = face_image((args.size, args.size), faces=[(args.size // 2, args.size // 2, args.size // 6)], seed=3)
    _, embeddings = analyzer.all_embeddings(image)
    if len(embeddings) == 0:
        raise SystemExit("no face found in the benchmark image")
    g = torch.Generator().manual_seed(0)
    identities = {}
    for i in range(4):
        emb = torch.nn.functional.normalize(torch.from_numpy(embeddings[0]).float()
                                            + 0.5 * torch.randn(512, generator=g), dim=0)
        identities[f"person{i}"] = Identity(tokens=torch.zeros(8, 4), variant="bench", model_fingerprint="bench",
                                            name=f"person{i}", embedding=emb)
    print(f"face models: {pack} ({'synthetic' if args.antelopev2 is None else 'given'}), providers {args.providers}; "
          f"image {args.size}x{args.size}, one face")
    for n in (1, 4):
        chosen = dict(list(identities.items())[:n])
        likeness(analyzer, image, chosen)  # warm-up
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            scores = likeness(analyzer, image, chosen)
            times.append(time.perf_counter() - t)
        print(f"likeness, {n} identit{'y' if n == 1 else 'ies'}: {statistics.median(times) * 1000:.1f} ms per image "
              f"(median of {args.repeat}; min {min(times) * 1000:.1f}) -> {format_likeness(scores)}")
    webui_path(args, pack, image)


if __name__ == "__main__":
    main()
