"""Face stage with the real insightface FaceAnalysis on the synthetic antelopev2 pack."""

import numpy as np
import pytest
from face_pack import face_image

from hyperlora_ext import MissingModelsError, load_image
from hyperlora_ext.photos.crops import face_box
from hyperlora_ext.photos.faces import FaceAnalyzer, _bgr


@pytest.fixture(scope="module")
def analyzer(locations):
    return FaceAnalyzer(locations.antelopev2, providers=["CPUExecutionProvider"])


def test_only_needed_models_are_loaded(analyzer):
    assert set(analyzer.app.models) == {"detection", "landmark_2d_106", "recognition"}
    assert type(analyzer.app).__module__ == "insightface.app.face_analysis"


def test_face_sessions_do_not_spin(analyzer):
    import insightface

    session = analyzer.app.models["recognition"].session
    if insightface.__version__.startswith("0."):
        pytest.skip("insightface 0.x does not pass session options to ONNX Runtime")
    options = session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_single_face_crops_and_embedding(analyzer):
    res = analyzer.analyze(load_image(face_image(), "one.png"))
    assert res is not None and res.name == "one.png"
    cx, cy = (res.bbox[:2] + res.bbox[2:]) / 2
    assert abs(cx - 160) < 20 and abs(cy - 160) < 20
    assert res.landmarks.shape == (106, 2)
    (bx, by), half = face_box(res.landmarks)
    assert res.clip_image.size[0] == pytest.approx(2 * half, abs=1.5)
    assert res.embedding.shape == (512,) and np.linalg.norm(res.embedding) == pytest.approx(1.0, abs=1e-5)
    # background removed: the crop's corner is the flat grey canvas, the centre is skin
    assert res.clip_image.getpixel((0, 0)) == (127, 127, 127)
    assert res.clip_image.getpixel((res.clip_image.width // 2, res.clip_image.height // 2))[0] > 150


def test_background_kept_and_grayscale(analyzer):
    img = load_image(face_image(), "one.png")
    keep = analyzer.analyze(img, remove_bg=False)
    assert keep.clip_image.getpixel((0, 0)) != (127, 127, 127)
    gray = analyzer.analyze(img, grayscale=True)
    r, g, b = gray.clip_image.getpixel((gray.clip_image.width // 2, gray.clip_image.height // 2))
    assert r == g == b


def test_no_face(analyzer):
    assert analyzer.analyze(load_image(face_image(faces=[]), "empty.png")) is None


def test_largest_face_is_chosen(analyzer):
    img = face_image((640, 480), faces=[(150, 150, 60), (420, 260, 180)])
    res = analyzer.analyze(load_image(img, "two.png"))
    cx, cy = (res.bbox[:2] + res.bbox[2:]) / 2
    assert abs(cx - 420) < 30 and abs(cy - 260) < 30


def test_face_filling_the_frame_needs_padding(analyzer):
    img = face_image((200, 200), faces=[(100, 100, 260)])
    assert analyzer._detect(_bgr(img)) is None  # what the official plugin does: no face
    res = analyzer.analyze(load_image(img, "tight.png"))
    assert res is not None
    cx, cy = (res.bbox[:2] + res.bbox[2:]) / 2
    assert abs(cx - 100) < 20 and abs(cy - 100) < 20


def test_big_face_found_at_a_smaller_detector_size(analyzer):
    img = face_image((640, 640), faces=[(320, 320, 400)])
    assert len(analyzer.app.det_model.detect(_bgr(img), input_size=(640, 640))[0]) == 0
    res = analyzer.analyze(load_image(img, "big.png"))
    cx, cy = (res.bbox[:2] + res.bbox[2:]) / 2
    assert abs(cx - 320) < 30 and abs(cy - 320) < 30


def test_different_people_differ(analyzer):
    a = analyzer.analyze(load_image(face_image(feature=(170, 110, 90)), "a"))
    b = analyzer.analyze(load_image(face_image(feature=(250, 215, 190)), "b"))
    a2 = analyzer.analyze(load_image(face_image(feature=(170, 110, 90), seed=3), "a2"))
    assert float(a.embedding @ b.embedding) < float(a.embedding @ a2.embedding)


def test_base_crop(analyzer):
    res = analyzer.analyze(load_image(face_image(), "one.png"), base=True)
    assert res.base_image is not None and res.base_image.size[0] > 10


def test_missing_and_nested_pack(tmp_path, locations):
    with pytest.raises(MissingModelsError, match="scrfd_10g_bnkps.onnx") as err:
        FaceAnalyzer(tmp_path / "antelopev2")
    assert err.value.missing[0][1].endswith("antelopev2")
    nested = tmp_path / "antelopev2" / "antelopev2"  # what unzipping the release in place gives
    nested.mkdir(parents=True)
    for f in locations.antelopev2.glob("*.onnx"):
        (nested / f.name).write_bytes(f.read_bytes())
    fa = FaceAnalyzer(tmp_path / "antelopev2", providers=["CPUExecutionProvider"])
    assert fa.analyze(load_image(face_image(), "x")) is not None
