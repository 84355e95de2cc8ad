"""End-to-end: the first-use download inside the real WebUI, the way a new user meets it.

A WebUI whose HyperLoRA models folder is empty, with "Allow the first-use download" on and ``HF_ENDPOINT``
pointed at a local server that speaks the Hugging Face hub's file protocol (tests/hub_server.py). It serves a
release-like checkpoint (the real SDXL attention modules, 64-wide heads so no config.json, as released) under
the default variant's name and the e2e CLIP, paced so the transfer lasts a few seconds. The synthetic
antelopev2 pack is in place already: the download checks antelopev2 against the real files' pinned sha256.
Every other file (a host may ask for its own tokenizer files) answers 503, so the host falls back to its cache
as when offline, and the host's hub cache is a private copy, so nothing served can reach the shared one.

The panel's first Create (headless Chromium) shows "Downloading ..." in the WebUI while the files come, lands
each missing file in its folder with the served bytes, fetches each once, and makes the identity; a second
Create fetches nothing. Screenshot: ``download-progress-<host>.png`` (taken when the progress first shows).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from browser_helpers import EID, LONG, expect, field, screenshots, status, webui_page
from builders import full_sdxl_modules, make_checkpoint
from e2e_helpers import encode
from face_pack import face_image
from hub_server import HubServer, release_files
from webui_server import HOSTS, WebUI, require

from hyperlora_ext.model.locations import DEFAULT_VARIANT, HYPERLORA_REPO, ModelLocations

PACE = 8_000_000  # bytes per second: about 4 s for the ~35 MB served
# Collects every text the page shows that mentions the download, however briefly.
WATCH_DOWNLOAD_TEXT = """() => {
  window.__hlSeen = [];
  new MutationObserver(records => {
    for (const r of records) {
      const el = r.target.nodeType === Node.TEXT_NODE ? r.target.parentElement : r.target;
      const text = el && el.textContent;
      if (text && text.includes('Downloading') && window.__hlSeen.length < 500) window.__hlSeen.push(text.trim());
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module", params=list(HOSTS))
def hub_and_webui(request, tmp_path_factory, e2e_models):
    """(hub server, WebUI with an empty HyperLoRA models folder and the download allowed, that folder)."""
    host = request.param
    require(host)
    source = ModelLocations.under(e2e_models(host))  # its CLIP and antelopev2
    clip_dim = json.loads((source.clip_vit / "config.json").read_text())["vision_config"]["hidden_size"]
    release = make_checkpoint(tmp_path_factory.mktemp(f"{host}-release") / DEFAULT_VARIANT,
                              modules=full_sdxl_modules(), hyper_dim=2, rank=4, clip_dim=clip_dim, heads=1,
                              dim_head=64, seed=13, dtype=torch.float16)
    hub = HubServer(others_unavailable=True, bytes_per_second=PACE)
    for (repo, path), data in release_files(source, DEFAULT_VARIANT, release).items():
        hub.add(repo, path, data)
    models = tmp_path_factory.mktemp(f"{host}-empty") / "models"
    models.mkdir()
    # The synthetic antelopev2 pack in place: the download checks the real pack's pinned sha256 and would
    # refuse it (as it refuses any other file under that name).
    shutil.copytree(source.antelopev2, ModelLocations.under(models).antelopev2)
    hf_home = tmp_path_factory.mktemp(f"{host}-hf_home")
    if os.environ.get("HF_HOME") and Path(os.environ["HF_HOME"]).is_dir():
        shutil.copytree(os.environ["HF_HOME"], hf_home, dirs_exist_ok=True, symlinks=True)
    with hub:
        server = WebUI(host, tmp_path_factory.mktemp(f"{host}-dl-data"), models,
                       settings={"hyperlora_allow_download": True},
                       env={"HF_ENDPOINT": hub.url, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": None,
                            "TRANSFORMERS_OFFLINE": None})
        server.start()
        print(f"\n[e2e] {host} with an empty models folder answered after {server.startup_seconds:.0f} s")
        try:
            yield hub, server, models
        finally:
            server.stop()


def test_first_create_downloads_with_progress_in_the_webui(hub_and_webui, tmp_path, tmp_path_factory):
    hub, webui, models = hub_and_webui
    locs = ModelLocations.under(models)
    required = locs.missing_files(DEFAULT_VARIANT)
    assert len(required) == len(locs.required_files(DEFAULT_VARIANT)) - 3 == 7  # all but antelopev2's three
    photo = tmp_path / "erin.png"
    face_image(pattern=40, seed=3).save(photo)
    shots = screenshots(tmp_path_factory)
    with webui_page(webui.url) as page:
        page.evaluate(WATCH_DOWNLOAD_TEXT)
        page.locator(f"{EID}_files input[type=file]").first.set_input_files([str(photo)])
        field(page, f"{EID}_name").fill("dl_erin")
        page.click(f"{EID}_create")
        page.wait_for_function("window.__hlSeen.length > 0", timeout=LONG)
        page.screenshot(path=str(shots / f"download-progress-{webui.host}.png"))
        expect(status(page, f"{EID}_status")).to_contain_text("Created 'dl_erin'", timeout=LONG)
        seen = page.evaluate("window.__hlSeen")
    print(f"\n[e2e] {webui.host}: {len(seen)} progress texts, first {seen[0][:120]!r}, last {seen[-1][:120]!r}")
    assert any("Downloading" in t and ("HyperLoRA" in t or ".safetensors" in t or ".onnx" in t) for t in seen), seen

    served = hub.files
    for name, folder, repo in required:
        key = (repo, f"{DEFAULT_VARIANT}/{name}" if repo == HYPERLORA_REPO else name)
        assert (folder / name).read_bytes() == served[key].data, f"{folder / name} differs from what was served"
    fetched = sorted((r.repo, r.file) for r in hub.gets() if (r.repo, r.file) in served)
    assert len(fetched) == len(set(fetched)) == len(required), fetched  # each required file once, no more

    r = webui.post("/hyperlora/v1/identities", {"name": "dl_erin2", "images": [encode(face_image(seed=4))]})
    assert r.status_code == 200, r.text
    assert len([g for g in hub.gets() if (g.repo, g.file) in served]) == len(required)  # nothing fetched again
