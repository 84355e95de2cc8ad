"""A saved LoRA ("Save as LoRA") is a valid starting point for kohya sd-scripts' SDXL LoRA training.

Loads the file with sd-scripts' own network code (``networks/lora.py``) over its own SDXL UNet
class (built on the meta device: only the module tree is needed) and tiny text encoders, the two
ways ``sdxl_train_network.py --network_weights`` does: ``--dim_from_weights``
(``create_network_from_weights``) and ``--network_dim 8 --network_alpha 4`` (``create_network`` +
``load_weights``). Skipped unless ``HYPERLORA_SD_SCRIPTS`` names an sd-scripts checkout (and its
``diffusers`` / ``einops`` are installed). sd-scripts runs in a subprocess so its top-level
``library`` / ``networks`` packages never mix with this test session's modules.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import CLIP_DIM, full_sdxl_modules, make_checkpoint
from face_pack import face_image
from safetensors import safe_open

from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.lora import layer_names
from hyperlora_ext.model.locations import ModelLocations

SD_SCRIPTS = os.environ.get("HYPERLORA_SD_SCRIPTS")
pytestmark = pytest.mark.skipif(not SD_SCRIPTS, reason="set HYPERLORA_SD_SCRIPTS to an sd-scripts checkout")

CHILD = r'''
import json, sys, types
import torch
sd_scripts, lora_file = sys.argv[1], sys.argv[2]
sys.path.insert(0, sd_scripts)
# what sd-scripts imports from diffusers, loaded before the stand-in below so it sees the real environment
from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler  # noqa: F401
import diffusers.schedulers.scheduling_euler_ancestral_discrete  # noqa: F401
try:
    import torchvision  # noqa: F401
except ImportError:  # only library/utils' image helpers use it, not the network code under test
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms})
from networks import lora
from library.sdxl_original_unet import SdxlUNet2DConditionModel
from safetensors.torch import load_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

with torch.device("meta"):
    unet = SdxlUNet2DConditionModel()
cfg = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=100,
           max_position_embeddings=16)
text_encoders = [CLIPTextModel(CLIPTextConfig(**cfg)), CLIPTextModelWithProjection(CLIPTextConfig(**cfg))]
file_sd = load_file(lora_file)

def values_equal(net):
    own = net.state_dict()
    return all(torch.equal(own[k], v.to(own[k].dtype)) for k, v in file_sd.items() if k in own)

out = {}
net, weights = lora.create_network_from_weights(1.0, lora_file, None, text_encoders, unet)
net.apply_to(text_encoders, unet)  # registers the modules, as train_network.py does before loading
info = net.load_state_dict(weights, strict=False)
out["from_weights"] = {"unet": [m.lora_name for m in net.unet_loras], "te": len(net.text_encoder_loras),
                       "missing": list(info.missing_keys), "unexpected": list(info.unexpected_keys),
                       "ranks": sorted({m.lora_dim for m in net.unet_loras}),
                       "scales": sorted({float(m.scale) for m in net.unet_loras}), "equal": values_equal(net)}
net = lora.create_network(1.0, 8, 4, None, text_encoders, unet)
net.apply_to(text_encoders, unet)
info = net.load_weights(lora_file)
keys = set(net.state_dict())
out["dim_alpha"] = {"unexpected": list(info.unexpected_keys), "absent": sorted(set(file_sd) - keys),
                    "scales": sorted({float(m.scale) for m in net.unet_loras}), "equal": values_equal(net)}
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def saved_lora(models_dir, tmp_path_factory) -> Path:
    """A LoRA file written by the panel's *Save as LoRA* path from an identity of a small
    checkpoint with all 560 SDXL attention layers at their real shapes (rank 8, alpha 4)."""
    root = tmp_path_factory.mktemp("sdxl_shapes") / "models"
    shared, locs = ModelLocations.under(models_dir), ModelLocations.under(root)
    for folder in ("clip_vit", "clip_processor", "antelopev2"):
        getattr(locs, folder).parent.mkdir(parents=True, exist_ok=True)
        getattr(locs, folder).symlink_to(getattr(shared, folder), target_is_directory=True)
    make_checkpoint(locs.hyper_lora / "sdxl_shapes", modules=full_sdxl_modules(), hyper_dim=1, clip_dim=CLIP_DIM)
    cfg = ServiceConfig(models_dir=root, device="cpu", dtype="fp32", allow_download=False)
    service = HyperLoRAService(lambda: cfg)
    service.create_identity([face_image(seed=3)], "alice", "sdxl_shapes")
    return service.save_lora("alice", root / "Lora")


def test_saved_lora_loads_in_sd_scripts(saved_lora):
    absent = [m for m in ("diffusers", "einops", "cv2") if importlib.util.find_spec(m) is None]
    if absent:
        pytest.skip(f"sd-scripts needs {', '.join(absent)} (pip install {' '.join(absent)})")
    with safe_open(str(saved_lora), framework="pt") as f:
        layers = layer_names({k: None for k in f.keys()})
        assert f.metadata()["ss_network_dim"] == "8" and f.metadata()["ss_network_alpha"] == "4.0"
    assert len(layers) == 560
    run = subprocess.run([sys.executable, "-c", CHILD, SD_SCRIPTS, str(saved_lora)], capture_output=True,
                         text=True, timeout=600, cwd=SD_SCRIPTS)
    lines = [x for x in run.stdout.splitlines() if x.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    fw = out["from_weights"]
    assert sorted(fw["unet"]) == sorted(layers) and fw["te"] == 0  # all 560 layers, nothing else
    assert fw["missing"] == [] and fw["unexpected"] == [] and fw["equal"]
    assert fw["ranks"] == [8] and fw["scales"] == [0.5]  # alpha / rank as HyperLoRA applies it
    da = out["dim_alpha"]
    assert da["unexpected"] == [] and da["absent"] == [] and da["equal"]
    assert da["scales"] == [0.5]  # --network_alpha 4 keeps HyperLoRA's scale (sd-scripts reads no alpha)
