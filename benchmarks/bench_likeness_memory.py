"""The likeness score per image with and without a loaded hypernetwork: time and peak RSS.

    python benchmarks/bench_likeness_memory.py [--dir DIR] [--size 1024] [--repeat 7] [--small]

Each case runs in a fresh process (peak RSS only grows) and scores one generated-size image with one
face for one identity through the service, as the WebUI does after each final image:

* ``face models only``: ``service.likeness`` now, which loads the face models and nothing else;
* ``with the hypernetwork``: the variant loaded first, as the likeness did before the face models
  were their own object (it loaded the model that made the identity).

The checkpoint is a random one in the released shapes (~3 GB fp16, built once, as ``bench_engine.py``;
``--small``: the tests' tiny one), loaded with ``device="cpu"`` and ``dtype="auto"``. The face models
are the tests' synthetic antelopev2 pack, so the times are the pipeline's, not the real networks'; CLIP
is present (the model manager checks for it) but never loaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from builders import CLIP_DIM, make_checkpoint, make_clip  # noqa: E402
from face_pack import build_face_pack, face_image  # noqa: E402

from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig  # noqa: E402
from hyperlora_ext.identities.identity import Identity  # noqa: E402
from hyperlora_ext.model.locations import ModelLocations  # noqa: E402

VARIANT = "sdxl_hyper_id_lora_v1_fidelity"
CASES = {"faces": "face models only", "hypernet": "with the hypernetwork"}


def prepare(models: Path, small: bool) -> None:
    """The checkpoint (full-size unless ``small``), a tiny CLIP and the synthetic face pack, each once."""
    locs = ModelLocations.under(models)
    if small:
        if not (locs.hyper_lora / VARIANT).exists():
            make_checkpoint(locs.hyper_lora / VARIANT, clip_dim=CLIP_DIM, seed=1)
    else:
        from bench_engine import build_full_checkpoint

        build_full_checkpoint(locs.hyper_lora / VARIANT)
    if not (locs.clip_vit / "config.json").exists():
        make_clip(locs.clip_vit, locs.clip_processor, hidden=CLIP_DIM)
    if not (locs.antelopev2 / "glintr100.onnx").exists():
        build_face_pack(locs.antelopev2)


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB: ``VmRSS`` and ``VmHWM`` (Linux; not
    ``getrusage``, whose peak a process inherits across ``exec`` from the one that started it)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def run_case(case: str, models: Path, size: int, repeat: int) -> dict:
    """One case in this process: load what it needs, score ``repeat`` times; times in ms, RSS in MB."""
    cfg = ServiceConfig(models_dir=models, identities_dir=models.parent / "identities", device="cpu",
                        allow_download=False, providers=("CPUExecutionProvider",))
    service = HyperLoRAService(lambda: cfg)
    image = face_image((size, size), faces=[(size // 2, size // 2, size // 6)], seed=3)
    out = {"rss_start": rss_mb()[0]}
    t = time.perf_counter()
    if case == "hypernet":
        service.models.model(VARIANT)
    out["load_s"] = time.perf_counter() - t
    _, embeddings = service.models.face_models().analyzer().all_embeddings(image)
    emb = torch.nn.functional.normalize(torch.from_numpy(embeddings[0]).float(), dim=0)
    identity = Identity(tokens=torch.zeros(8, 4), variant=VARIANT, model_fingerprint="bench", name="alice",
                        embedding=emb)
    service.likeness(image, [identity])  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        scores = service.likeness(image, [identity])
        times.append((time.perf_counter() - t) * 1000)
    out.update(ms=statistics.median(times), ms_min=min(times), score=scores[0].similarity,
               hypernet_loaded=service.models.loaded_model is not None)
    out["rss_end"], out["rss_peak"] = rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hyperlora-bench/likeness-memory"))
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (SDXL: 1024)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--small", action="store_true", help="the tests' tiny checkpoint instead of a full-size one")
    ap.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)  # one case, in a child process
    args = ap.parse_args()
    models = args.dir / ("small" if args.small else "full") / "models"
    if args.case:
        print(json.dumps(run_case(args.case, models, args.size, args.repeat)))
        return
    t = time.perf_counter()
    prepare(models, args.small)
    print(f"models ready in {time.perf_counter() - t:.1f} s: {models} ({'tiny' if args.small else 'full-size'} "
          f"checkpoint, synthetic face pack); image {args.size}x{args.size}, one face; torch threads "
          f"{torch.get_num_threads()}")
    for case, label in CASES.items():
        cmd = [sys.executable, __file__, "--case", case, "--dir", str(args.dir), "--size", str(args.size),
               "--repeat", str(args.repeat)] + (["--small"] if args.small else [])
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        load = f"; hypernetwork load {result['load_s']:.1f} s" if case == "hypernet" else ""
        print(f"{label}: likeness {result['ms']:.1f} ms per image (median of {args.repeat}, min "
              f"{result['ms_min']:.1f}); peak RSS {result['rss_peak']:.0f} MB (RSS {result['rss_start']:.0f} MB "
              f"after imports, {result['rss_end']:.0f} MB at the end){load}; hypernetwork loaded: "
              f"{result['hypernet_loaded']}")


if __name__ == "__main__":
    main()
