"""install.py and preload.py, run the way the WebUI runs them.

The WebUI's launcher runs ``install.py`` with its own ``launch`` module importable
(``is_installed(name)``, ``run_pip(args, desc)``); here a stand-in ``launch`` module records the
pip calls, and a stand-in of the WebUI's ``torch`` says whether it sees a GPU, so the real install.py
runs unchanged in a subprocess, as on a CPU and on a CUDA machine.
"""

import argparse
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH = '''
import json, os
MISSING = set(json.loads(os.environ["FAKE_MISSING"]))
def is_installed(name):
    return name not in MISSING
def run_pip(args, desc=None):
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(args + "\\n")
'''


TORCH = "class cuda:\n    @staticmethod\n    def is_available():\n        return {cuda}\n"


def run_install(tmp_path: Path, missing: list[str], cuda: bool | None = None) -> list[str]:
    """Run install.py; ``cuda``: the WebUI's torch reports a GPU (True/False) or cannot be imported (None)."""
    (tmp_path / "launch.py").write_text(LAUNCH)
    (tmp_path / "torch.py").write_text(TORCH.format(cuda=cuda) if cuda is not None else "raise ImportError('no torch')")
    log = tmp_path / "pip.log"
    env = {"PYTHONPATH": str(tmp_path), "FAKE_MISSING": json.dumps(missing), "FAKE_LOG": str(log),
           "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, str(REPO / "install.py")], env=env, check=True, cwd=tmp_path, timeout=300)
    return log.read_text().splitlines() if log.exists() else []


def test_install_does_nothing_when_everything_is_there(tmp_path):
    assert run_install(tmp_path, []) == []


@pytest.mark.parametrize("cuda,onnxruntime", [(False, "onnxruntime"), (True, "onnxruntime-gpu"),
                                              (None, "onnxruntime")])
def test_install_adds_only_what_is_missing_and_never_torch(tmp_path, cuda, onnxruntime):
    calls = run_install(tmp_path, ["insightface", "onnxruntime", "cv2"], cuda)
    assert calls == ['install "opencv-python-headless>=4.8"', f'install "{onnxruntime}>=1.16"',
                     'install "insightface>=0.7.3"']
    assert not any("torch" in c for c in calls)


@pytest.mark.parametrize("argv,expected", [([], None), (["--hyperlora-models-dir", "/m"], "/m")])
def test_preload_adds_the_models_dir_flag(argv, expected):
    parser = argparse.ArgumentParser()
    runpy.run_path(str(REPO / "preload.py"))["preload"](parser)
    assert parser.parse_args(argv).hyperlora_models_dir == expected
