"""The command line (``python -m hyperlora_ext``): help, predict, likeness (text and --json), missing models,
and failures as one ``error:`` line (traceback only with --debug), quiet third-party libraries, short variant
names."""

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from face_pack import face_image
from people import ALICE_PATTERNED, BOB_PATTERNED, group_photo
from safetensors import safe_open

from hyperlora_ext.cli import main, quiet_libraries

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "hyperlora_ext", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_cli_help():
    out = run_cli("--help")
    assert out.returncode == 0 and "predict" in out.stdout and "download" in out.stdout
    out = run_cli("predict", "--help")
    assert "--variant" in out.stdout and "--models-dir" in out.stdout and "--device" in out.stdout
    out = run_cli("likeness", "--help")
    assert "--identity" in out.stdout and "--json" in out.stdout


def test_cli_predict(locations, tmp_path):
    face = tmp_path / "alice.png"
    face_image().save(face)
    wall = tmp_path / "wall.png"
    face_image(faces=[]).save(wall)
    out_file = tmp_path / "alice.safetensors"
    out = run_cli("predict", str(face), str(wall), "-o", str(out_file), "--variant", "tiny_id",
                  "--models-dir", str(locations.root), "--device", "cpu", "--dtype", "fp32",
                  "--save-identity", str(tmp_path / "alice.hyperlora.safetensors"))
    assert out.returncode == 0, out.stderr
    assert "skipped wall.png: no face found" in out.stderr and "wrote" in out.stdout
    with safe_open(str(out_file), framework="pt") as f:
        assert f.metadata()["hyperlora.variant"] == "tiny_id" and len(list(f.keys())) == 48
    assert (tmp_path / "alice.preview.png").is_file() and (tmp_path / "alice.hyperlora.safetensors").is_file()
    again = run_cli("predict", str(face), "-o", str(out_file), "--variant", "tiny_id",
                    "--models-dir", str(locations.root), "--device", "cpu")
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.fixture
def identity_files(model, tmp_path):
    """alice.hyperlora.safetensors, bob.safetensors and a file from before reference embeddings."""
    model.clear_cache()
    alice = model.predict(ALICE_PATTERNED[:2], name="alice").identity.save(tmp_path / "alice.hyperlora.safetensors")
    bob = model.predict(BOB_PATTERNED, name="bob").identity.save(tmp_path / "bob.safetensors")
    return alice, bob, Path(__file__).parent / "data" / "identity_v1_before_embedding.safetensors"


def likeness_args(image, *identities, locations):
    return ["likeness", str(image), *(a for i in identities for a in ("--identity", str(i))),
            "--models-dir", str(locations.root)]


def test_cli_likeness_one_face_two_identities(identity_files, locations, tmp_path, capsys):
    alice, bob, _ = identity_files
    image = tmp_path / "gen.png"
    ALICE_PATTERNED[0].save(image)
    assert main(likeness_args(image, alice, bob, locations=locations)) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("alice 0.9") and out.endswith(" (face 1), bob no face"), out  # one face: hers


def test_cli_likeness_two_faces_text_and_json(identity_files, locations, tmp_path, capsys):
    alice, bob, old = identity_files
    image = tmp_path / "two.png"
    group_photo((800, 400), [(200, 200, 160, -80), (600, 200, 160, 80)]).save(image)  # Bob left, Alice right
    assert main(likeness_args(image, alice, bob, old, locations=locations)) == 0
    captured = capsys.readouterr()
    text = captured.out.strip()
    assert "identity_v1_before_embedding: no reference embedding" in captured.err  # left out, said so
    assert main([*likeness_args(image, alice, bob, old, locations=locations), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["text"] == text and list(report["skipped"]) == ["identity_v1_before_embedding"]
    alice_json, bob_json = report["scores"]
    assert (alice_json["name"], alice_json["face"], bob_json["name"], bob_json["face"]) == ("alice", 2, "bob", 1)
    assert text == f"alice {alice_json['score']:.2f} (face 2), bob {bob_json['score']:.2f} (face 1)"
    assert alice_json["score"] > 0.9 and len(alice_json["box"]) == 4
    x1, y1, x2, y2 = alice_json["box"]
    assert 400 < x1 < x2 < 800 and 0 < y1 < y2 < 400 and bob_json["box"][2] < 400  # pixels of the 800x400 image
    face_image(faces=[]).save(image)
    assert main([*likeness_args(image, alice, locations=locations), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"] == [{"name": "alice", "score": None, "face": None,
                                                             "box": None}]


def test_cli_reports_missing_models(tmp_path):
    out = run_cli("predict", "x.png", "-o", str(tmp_path / "o.safetensors"), "--models-dir", str(tmp_path))
    assert out.returncode == 2
    assert "model files are missing" in out.stderr and "resampler.safetensors" in out.stderr
    assert "scrfd_10g_bnkps.onnx" in out.stderr and str(tmp_path / "insightface") in out.stderr


@pytest.fixture
def alice(tmp_path):
    path = tmp_path / "alice.png"
    face_image().save(path)
    return path


def predict_args(alice, locations, output, *extra):
    return ["predict", str(alice), "-o", str(output), "--models-dir", str(locations.root), "--variant", "tiny_id",
            "--device", "cpu", "--dtype", "fp32", *extra]


def test_unexpected_error_is_one_line(alice, locations, tmp_path, capsys):
    target = tmp_path / "taken.safetensors"
    target.mkdir()  # an OSError no part of the package expects
    assert main(predict_args(alice, locations, target, "--overwrite")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: writing {target} failed: IsADirectoryError")
    assert "--debug" in err and "Traceback" not in err
    with pytest.raises(IsADirectoryError):
        main(predict_args(alice, locations, target, "--overwrite", "--debug"))


def test_known_errors_keep_exit_status_2(alice, locations, tmp_path, capsys):
    out = tmp_path / "a.safetensors"
    out.write_bytes(b"x")
    assert main(predict_args(alice, locations, out)) == 2
    assert capsys.readouterr().err.startswith("error: ") and out.read_bytes() == b"x"


@pytest.mark.parametrize("short,folder", [("fidelity", "sdxl_hyper_id_lora_v1_fidelity"),
                                          ("edit", "sdxl_hyper_id_lora_v1_edit")])
def test_short_variant_names(tmp_path, capsys, short, folder):
    assert main(["predict", "x.png", "-o", str(tmp_path / "o.safetensors"), "--models-dir", str(tmp_path),
                 "--variant", short]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: HyperLoRA model files are missing") and f"hyper_lora/{folder}" in err


def test_quiet_libraries_hides_their_noise_only(capsys):
    log = logging.getLogger("insightface.model_zoo")
    with quiet_libraries():
        print("find model: x.onnx detection")  # what insightface 0.7.3 prints
        log.warning("noise")
        with warnings.catch_warnings(record=True) as caught:
            warnings.warn_explicit("deprecated", FutureWarning, "face_align.py", 1, module="insightface.utils")
            warnings.warn_explicit("ours", UserWarning, "faces.py", 1, module="hyperlora_ext.photos.faces")
    assert [str(w.message) for w in caught] == ["ours"]
    captured = capsys.readouterr()
    assert captured.out == "" and "noise" not in captured.err
    assert log.getEffectiveLevel() < logging.ERROR  # restored
    with quiet_libraries(verbose=True):
        print("find model: x.onnx detection")
    assert "find model" in capsys.readouterr().out


def test_verbose_shows_library_output(alice, locations, tmp_path):
    quiet = run_cli(*predict_args(alice, locations, tmp_path / "a.safetensors"))
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "" and quiet.stdout.startswith("wrote ") and quiet.stdout.count("\n") == 1
    loud = run_cli(*predict_args(alice, locations, tmp_path / "b.safetensors", "--verbose"))
    assert loud.returncode == 0 and loud.stdout.count("\n") >= 1
    assert any(lib in loud.stderr for lib in ("transformers", "insightface", "onnxruntime")), loud.stderr
