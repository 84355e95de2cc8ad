"""CLI failures: one ``error:`` line (traceback only with --debug), quiet third-party libraries,
short variant names."""

import logging
import warnings

import pytest
from face_pack import face_image
from test_cli_models import run_cli

from hyperlora_ext.cli import main, quiet_libraries


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
