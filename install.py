"""Runs at every WebUI launch (the WebUI's launcher calls it). Installs only what is missing.

Never touches torch, never downloads models, respects an existing insightface (e.g. 0.7.3
installed by ControlNet or ReActor).
"""

import launch  # provided by the WebUI

PACKAGES = [  # (import name, pip requirement)
    ("safetensors", "safetensors>=0.3.1"),
    ("huggingface_hub", "huggingface_hub>=0.19"),
    ("cv2", "opencv-python-headless>=4.8"),
]


def _onnxruntime_requirement() -> str:
    try:
        import torch

        return "onnxruntime-gpu>=1.16" if torch.cuda.is_available() else "onnxruntime>=1.16"
    except Exception:
        return "onnxruntime>=1.16"


for module, requirement in PACKAGES:
    if not launch.is_installed(module):
        launch.run_pip(f'install "{requirement}"', f"sd-webui-hyperlora requirement: {requirement}")

if not launch.is_installed("onnxruntime"):  # onnxruntime-gpu also provides the onnxruntime module
    req = _onnxruntime_requirement()
    launch.run_pip(f'install "{req}"', f"sd-webui-hyperlora requirement: {req}")

if not launch.is_installed("insightface"):
    launch.run_pip('install "insightface>=0.7.3"', "sd-webui-hyperlora requirement: insightface")
