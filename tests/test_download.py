"""First-use download for real: ``huggingface_hub`` against a local server that speaks the hub's
file protocol (tests/hub_server.py), serving the tiny test models in the official repos' layouts.

In-process tests pass the server as ``endpoint`` (or ``$HF_ENDPOINT``, which the download reads
when it starts); the command-line tests set ``HF_ENDPOINT`` before ``huggingface_hub`` is imported,
as a user would.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from builders import CLIP_DIM, make_checkpoint
from face_pack import face_image
from hub_server import HubServer, release_files
from safetensors.torch import save as safetensors_bytes

from hyperlora_ext import DownloadError, MissingModelsError, ModelLocations, download_models
from hyperlora_ext.app.core.host_hooks import HostHooks
from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.panel.panel import Panel
from hyperlora_ext.download import RemoteFile, fetch
from hyperlora_ext.integrity import verify_file
from hyperlora_ext.model.locations import (
    ANTELOPEV2_REPO,
    ANTELOPEV2_REVISION,
    CLIP_REPO,
    DEFAULT_VARIANT,
    HYPERLORA_REPO,
    PINS,
    FilePin,
    RepoPin,
)
from hyperlora_ext.photos.faces import ANTELOPEV2_FILES

ROOT = Path(__file__).resolve().parents[1]
VARIANT = DEFAULT_VARIANT
RESAMPLER = f"{VARIANT}/resampler.safetensors"
TEST_REVISION = "5eed" * 10  # the commit the tests pin the synthetic antelopev2 pack at


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """Downloads allowed even where the environment says offline; no user cache consulted."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


@pytest.fixture(scope="module")
def hub_files(models_dir, tmp_path_factory) -> dict[tuple[str, str], bytes]:
    """What the three hub repos serve: a tiny loadable checkpoint (64-wide heads, so no config.json
    is needed, as with the release), the test CLIP and the synthetic antelopev2 pack."""
    ckpt = make_checkpoint(tmp_path_factory.mktemp("release") / VARIANT, clip_dim=CLIP_DIM, heads=1, dim_head=64,
                           seed=5)
    return release_files(ModelLocations.under(models_dir), VARIANT, ckpt)


@pytest.fixture(scope="module")
def pins(hub_files) -> dict[str, RepoPin]:
    """The antelopev2 mirror pinned as the release pins it (a commit, each file's size and sha256), but
    to the synthetic pack the test hub serves: the real pins refuse it (``test_the_real_pins_...``)."""
    return {ANTELOPEV2_REPO: RepoPin(TEST_REVISION, {
        path: FilePin(len(data), hashlib.sha256(data).hexdigest())
        for (repo, path), data in hub_files.items() if repo == ANTELOPEV2_REPO})}


def place_antelopev2(models_dir, locs: ModelLocations) -> None:
    """The synthetic pack already in place (where a download with the real pins would refuse it)."""
    locs.antelopev2.mkdir(parents=True, exist_ok=True)
    for name in ANTELOPEV2_FILES:
        (locs.antelopev2 / name).write_bytes((ModelLocations.under(models_dir).antelopev2 / name).read_bytes())


@pytest.fixture
def hub(hub_files):
    server = HubServer()
    for (repo, path), data in hub_files.items():
        server.add(repo, path, data)
    with server:
        yield server


@pytest.fixture
def locs(tmp_path) -> ModelLocations:
    return ModelLocations.under(tmp_path / "models")


def landed(locs: ModelLocations, hub_files) -> dict[str, bytes]:
    """Local file (relative to the models folder) -> bytes, for every file the hub serves."""
    where = {HYPERLORA_REPO: locs.hyper_lora, CLIP_REPO: None, ANTELOPEV2_REPO: locs.antelopev2}
    out = {}
    for (repo, path), _ in hub_files.items():
        folder = where[repo] or (locs.clip_processor if path == "preprocessor_config.json" else locs.clip_vit)
        f = folder / path
        out[str(f.relative_to(locs.root))] = f.read_bytes() if f.is_file() else b""
    return out


def test_files_land_in_their_folders_with_progress(locs, hub, hub_files, pins):
    calls = []
    got = download_models(locs, VARIANT, progress=False, on_progress=lambda f, d: calls.append((f, d)),
                          endpoint=hub.url, pins=pins)
    assert len(got) == 10 and locs.missing_files(VARIANT) == [] and locs.damaged_files(VARIANT) == []
    assert list(landed(locs, hub_files).values()) == list(hub_files.values())
    assert (locs.variant_dir(VARIANT) / "resampler.safetensors").is_file()
    assert (locs.clip_processor / "preprocessor_config.json").is_file()
    assert sorted(p.name for p in locs.antelopev2.glob("*.onnx")) == sorted(ANTELOPEV2_FILES)
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0.0 <= fractions[0] < 0.1
    total_mb = sum(map(len, hub_files.values())) / 1e6
    assert any(f"Downloading {RESAMPLER} " in d and f"of {total_mb:.1f} MB" in d for _, d in calls)
    chunks = [d for _, d in calls if "model.safetensors" in d]
    assert len(chunks) >= 2  # the file's start and its received bytes, not only "done"
    assert len(hub.gets()) == 10 and all(r.range is None for r in hub.gets())
    assert {r.file: r.revision for r in hub.gets() if r.repo == ANTELOPEV2_REPO} == dict.fromkeys(
        ANTELOPEV2_FILES, TEST_REVISION)  # the pinned commit; the other repos at their main branch
    assert {r.revision for r in hub.gets() if r.repo != ANTELOPEV2_REPO} == {"main"}


def test_only_missing_files_are_fetched(locs, hub, hub_files, pins):
    download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins)
    before = len(hub.log)
    assert download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins) == []
    assert len(hub.log) == before  # complete: no request at all
    (locs.variant_dir(VARIANT) / "resampler.safetensors").unlink()
    (locs.antelopev2 / "glintr100.onnx").unlink()
    got = download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins)
    assert sorted(p.name for p in got) == ["glintr100.onnx", "resampler.safetensors"]
    assert sorted(r.file for r in hub.gets()[10:]) == ["glintr100.onnx", RESAMPLER]
    assert list(landed(locs, hub_files).values()) == list(hub_files.values())


@pytest.mark.parametrize("ignore_range", [False, True], ids=["resumed", "restarted"])
def test_interrupted_download_resumes_or_restarts(locs, hub, ignore_range, pins):
    """The server closes the connection 15 MB into a 24 MB file once: huggingface_hub asks for the
    rest with a byte range from what it has written (10 MB chunks), or takes the whole file again
    when the server ignores ranges. Either way the file is whole and nothing partial is left."""
    big = safetensors_bytes({"w": torch.randn(6 << 20, generator=torch.Generator().manual_seed(0))})
    served = hub.add(HYPERLORA_REPO, RESAMPLER, big)
    served.cut_after, served.cuts_left, served.ignore_range = 15 << 20, 1, ignore_range
    calls = []
    download_models(locs, VARIANT, progress=False, on_progress=lambda f, d: calls.append(f), endpoint=hub.url,
                    pins=pins)
    path = locs.variant_dir(VARIANT) / "resampler.safetensors"
    assert path.read_bytes() == big and verify_file(path) is None
    tries = hub.gets(RESAMPLER)
    assert len(tries) == 2 and tries[0].range is None and tries[1].range is not None
    assert 0 < int(tries[1].range.removeprefix("bytes=").rstrip("-")) <= 15 << 20
    assert calls[-1] == 1.0 and max(calls) == 1.0
    assert calls == sorted(calls) or ignore_range  # a restart steps back to the file's start
    assert not list(locs.root.rglob("*.incomplete"))


def test_progress_follows_the_bytes_of_a_large_file(tmp_path):
    """A 25 MB file reports its received bytes while it downloads (10 MB chunks), not only its end;
    with huggingface_hub < 1.0 too (its bar class is swapped for the call, then restored)."""
    from huggingface_hub import file_download

    big = safetensors_bytes({"w": torch.randn(6 << 20, generator=torch.Generator().manual_seed(1))})
    bar_class = getattr(file_download, "tqdm", None)
    with HubServer() as hub:
        hub.add("o/r", "v/big.safetensors", big)
        calls = []
        fetch([RemoteFile("o/r", "v/big.safetensors", tmp_path)], hub.url, lambda f, d: calls.append((f, d)))
    inside = [f for f, d in calls if 0 < f < 1]
    assert len(inside) >= 2 and inside == sorted(inside), calls
    assert calls[-2][1] == "Downloading v/big.safetensors (1/1): 25.2 of 25.2 MB" and calls[-1][0] == 1.0
    assert getattr(file_download, "tqdm", None) is bar_class and (tmp_path / "v/big.safetensors").read_bytes() == big


def test_corrupt_download_is_deleted_and_named(locs, hub, hub_files, pins):
    served = hub.files[(CLIP_REPO, "model.safetensors")]
    good = served.data
    served.sha256 = hashlib.sha256(good).hexdigest()
    served.data = good[:100] + bytes([good[100] ^ 0xFF]) + good[101:]  # same size, one byte flipped
    with pytest.raises(DownloadError) as err:
        download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins)
    path = locs.clip_vit / "model.safetensors"
    text = str(err.value)
    assert f"{path}: the downloaded file does not match the hub's sha256" in text and "deleted" in text
    assert not path.exists() and ("model.safetensors", str(locs.clip_vit)) in err.value.missing
    assert f"model.safetensors (from {CLIP_REPO}) -> {locs.clip_vit}" in text
    served.data = good  # the hub is fixed: the next run fetches only what is missing
    before = len(hub.gets())
    download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins)
    assert "model.safetensors" in [r.file for r in hub.gets()[before:]] and path.read_bytes() == good


def test_truncated_file_is_never_loaded(locs, hub, hub_files, tmp_path, pins):
    """A truncated file on the hub (its sha256 and size agree) fails the file's own check; a
    truncated file already on disk is reported, or fetched again when the download is allowed."""
    served = hub.files[(HYPERLORA_REPO, RESAMPLER)]
    full = served.data
    served.data = full[:-64]
    with pytest.raises(DownloadError, match="resampler.safetensors: the downloaded file is truncated or damaged"):
        download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins)
    path = locs.variant_dir(VARIANT) / "resampler.safetensors"
    assert not path.exists()
    served.data = full
    download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins)
    path.write_bytes(full[: len(full) // 2])  # e.g. a copy made by hand that stopped half-way
    assert [d[0] for d in locs.damaged_files(VARIANT)] == ["resampler.safetensors"]
    cfg = ServiceConfig(models_dir=locs.root, identities_dir=tmp_path / "ids", device="cpu", dtype="fp32",
                        allow_download=False)
    with pytest.raises(MissingModelsError, match="damaged") as err:
        HyperLoRAService(lambda: cfg).models.model()
    assert f"resampler.safetensors (from {HYPERLORA_REPO}) -> {path.parent}: is truncated or damaged" in str(err.value)
    before = len(hub.gets())
    assert download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins) == [path]
    assert [r.file for r in hub.gets()[before:]] == [RESAMPLER] and path.read_bytes() == full


def test_offline_names_every_missing_file(locs, hub):
    url = hub.url
    hub.__exit__(None, None, None)  # the server is gone: connection refused
    with pytest.raises(DownloadError) as err:
        download_models(locs, VARIANT, progress=False, endpoint=url)
    text = str(err.value)
    assert f"cannot reach the Hugging Face hub at {url}" in text and "check the internet connection" in text
    assert len(err.value.missing) == 10 and f"resampler.safetensors (from {HYPERLORA_REPO})" in text
    assert f"scrfd_10g_bnkps.onnx (from {ANTELOPEV2_REPO}) -> {locs.antelopev2}" in text
    hub.__enter__()  # the fixture stops it again


def test_service_first_create_downloads_with_progress(tmp_path, hub, monkeypatch, models_dir):
    """The panel's Create with the download allowed: the host's progress callback (gr.Progress in
    the WebUI) receives the download per chunk, then loading and prediction; the identity is made.
    (The antelopev2 pack is in place: the real pins refuse the synthetic one the hub serves.)"""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    place_antelopev2(models_dir, ModelLocations.under(tmp_path / "models"))
    cfg = ServiceConfig(models_dir=tmp_path / "models", device="cpu", dtype="fp32", allow_download=True)
    panel = Panel(HyperLoRAService(lambda: cfg), HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=print))
    photo = tmp_path / "me.png"
    face_image(seed=2).save(photo)
    seen = []
    crops, status, created = panel.create([str(photo)], "me", None, True, False, False,
                                          lambda f, d: seen.append((f, d)))
    assert created == "me" and len(crops) == 1, status
    texts = [d for _, d in seen]
    first_load = next(i for i, d in enumerate(texts) if d.startswith("Loading HyperLoRA"))
    downloads = [d for d in texts[:first_load] if d.startswith("Downloading ")]
    assert texts[0].startswith("Waiting for the WebUI")  # its lock first (here free at once)
    assert texts[1].startswith("Downloading HyperLoRA model files") and len(downloads) >= 11
    assert any("model.safetensors" in d for d in downloads) and seen[first_load - 1][0] == 1.0
    assert len(hub.gets()) == 7
    crops, status, created = panel.create([str(photo)], "me2", None, True, False, False, lambda f, d: None)
    assert created == "me2" and len(hub.gets()) == 7  # second Create: nothing fetched


def test_service_reports_a_failed_download(tmp_path, hub, monkeypatch):
    url = hub.url
    hub.__exit__(None, None, None)
    monkeypatch.setenv("HF_ENDPOINT", url)
    cfg = ServiceConfig(models_dir=tmp_path / "models", device="cpu", allow_download=True)
    panel = Panel(HyperLoRAService(lambda: cfg), HostHooks(lora_dir=lambda: tmp_path, lora_saved=print))
    photo = tmp_path / "me.png"
    face_image(seed=2).save(photo)
    _, status, created = panel.create([str(photo)], "me", None, True, False, False, lambda f, d: None)
    assert created is None and "cannot reach the Hugging Face hub" in status and "resampler.safetensors" in status
    hub.__enter__()


# ---- the command line, HF_ENDPOINT set before huggingface_hub is imported -------------------------
def _drop_dac_override() -> None:
    """In the child before exec: root loses the power to write where permissions forbid it
    (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH leave the bounding set), so a read-only folder is
    read-only for it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_download(models: Path, endpoint: str, as_user: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(PYTHONPATH=str(ROOT), HF_ENDPOINT=endpoint, HF_HOME=str(models.parent / "hf_home"))
    preexec = _drop_dac_override if as_user and os.geteuid() == 0 else None
    return subprocess.run([sys.executable, "-m", "hyperlora_ext", "download", "--models-dir", str(models),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=300,
                          preexec_fn=preexec)


def test_cli_download_through_hf_endpoint(locs, hub, hub_files, models_dir):
    place_antelopev2(models_dir, locs)  # the real pins refuse the synthetic pack the hub serves
    out = run_download(locs.root, hub.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("downloaded ") == 7 and f"all files for {VARIANT} are in place" in out.stdout
    assert list(landed(locs, hub_files).values()) == list(hub_files.values())
    again = run_download(locs.root, hub.url)
    assert again.returncode == 0 and "downloaded " not in again.stdout and len(hub.gets()) == 7


def test_cli_download_without_permission(locs, hub):
    locs.root.mkdir(parents=True)
    locs.root.chmod(0o555)
    try:
        out = run_download(locs.root, hub.url, as_user=True)
    finally:
        locs.root.chmod(0o755)
    assert out.returncode == 2, out.stderr
    assert f"cannot write to {locs.root}" in out.stderr and "Permission denied" in out.stderr
    assert "--models-dir" in out.stderr and "resampler.safetensors" in out.stderr
    assert hub.gets() == [] and not any(locs.root.iterdir())


def test_cli_download_offline(locs, hub):
    url = hub.url
    hub.__exit__(None, None, None)
    out = run_download(locs.root, url)
    hub.__enter__()
    assert out.returncode == 2 and f"cannot reach the Hugging Face hub at {url}" in out.stderr
    assert "glintr100.onnx (from DIAMONIK7777/antelopev2)" in out.stderr


# ---- the pinned antelopev2 mirror ---------------------------------------------------------------------
def test_the_antelopev2_mirror_is_pinned_at_a_commit_with_every_file():
    pin = PINS[ANTELOPEV2_REPO]
    assert re.fullmatch(r"[0-9a-f]{40}", pin.revision) and pin.revision == ANTELOPEV2_REVISION
    assert set(ANTELOPEV2_FILES) <= set(pin.files) == {
        "scrfd_10g_bnkps.onnx", "2d106det.onnx", "glintr100.onnx", "1k3d68.onnx", "genderage.onnx"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 1_000_000 for f in pin.files.values())
    assert HYPERLORA_REPO not in PINS and CLIP_REPO not in PINS  # their published values are not known here


def test_the_real_pins_refuse_another_file_before_downloading_it(locs, hub):
    """The hub serves the synthetic pack where the pinned antelopev2 files belong: its sizes give it
    away before any byte is fetched, and the message names the file and both sizes."""
    with pytest.raises(DownloadError) as err:
        download_models(locs, VARIANT, progress=False, endpoint=hub.url)
    text = str(err.value)
    pinned = PINS[ANTELOPEV2_REPO].files["scrfd_10g_bnkps.onnx"].size
    assert f"scrfd_10g_bnkps.onnx from {ANTELOPEV2_REPO}" in text and "nothing was downloaded" in text
    assert f"where the pinned file at commit {ANTELOPEV2_REVISION} has {pinned}" in text
    assert hub.gets() == [] and not [p for p in locs.root.rglob("*") if p.is_file()]


def test_a_download_that_is_not_the_pinned_file_is_deleted(locs, hub, hub_files, pins):
    """A hub that gives no sha256 for a file (a plain ETag) and serves other bytes of the pinned size:
    the file is hashed after the download, deleted and named."""
    served = hub.files[(ANTELOPEV2_REPO, "glintr100.onnx")]
    good = served.data
    served.sha256 = "plain-etag"
    served.data = bytes([good[0] ^ 0xFF]) + good[1:]
    with pytest.raises(DownloadError) as err:
        download_models(locs, VARIANT, progress=False, endpoint=hub.url, pins=pins)
    path = locs.antelopev2 / "glintr100.onnx"
    assert f"{path}: the downloaded file has sha256" in str(err.value)
    assert f"where the pinned file at commit {TEST_REVISION} has {hashlib.sha256(good).hexdigest()}" in str(err.value)
    assert "not the file this version was made for" in str(err.value) and not path.exists()
