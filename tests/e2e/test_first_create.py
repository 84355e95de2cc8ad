"""Where the first Create's time goes, per host (docs/performance.md).

A1111 loads the SD model in a background thread right after start-up, holding the model lock the
panel and the API must take (A1111 patches torch globally while it builds a model): a Create made
then waits for it. Forge loads the SD model at the first generation. With A1111's
``--skip-load-model-at-start`` the first Create waits for nothing, as on Forge. The split is in
the API's ``timings`` (and printed in the run's summary).
"""

from __future__ import annotations

import pytest
from e2e_helpers import TIMINGS, VARIANT, encode
from face_pack import face_image
from webui_server import WebUI, require

PHOTOS = [encode(face_image(feature=(170, 110, 90), seed=s)) for s in (1, 2)]


def _first_create(webui: WebUI) -> dict[str, float]:
    r = webui.post("/hyperlora/v1/identities", {"name": "first", "images": PHOTOS, "variant": VARIANT})
    assert r.status_code == 200, r.text
    return r.json()["timings"]


@pytest.mark.parametrize("host", ["a1111"])
def test_a1111_first_create_without_loading_the_model_at_start(host, e2e_models, tmp_path_factory):
    require(host)
    server = WebUI(host, tmp_path_factory.mktemp(f"{host}-lazy-data"), e2e_models(host),
                   args=["--skip-load-model-at-start"])
    server.start()
    try:
        timings = _first_create(server)
    finally:
        server.stop()
    for stage, seconds in timings.items():
        TIMINGS[f"{host} --skip-load-model-at-start first create: {stage}"] = [seconds]
    total = sum(timings.values())
    own = total - timings["wait for the WebUI"]
    print(f"\n[e2e] {host} --skip-load-model-at-start: first Create {total:.1f} s, waiting "
          f"{timings['wait for the WebUI']:.1f} s, HyperLoRA's own work {own:.1f} s")
    assert {"model load", "face models", "faces", "hypernet"} <= set(timings)
    assert timings["wait for the WebUI"] < 0.5 * own, "the first Create still waited for the WebUI"
