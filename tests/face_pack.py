"""A synthetic antelopev2-like insightface pack, built with the ONNX helper API.

The real ``insightface.app.FaceAnalysis`` loads and routes these graphs exactly as it does the
released ones (by their input/output signatures):

* ``scrfd_10g_bnkps.onnx`` — SCRFD signature (9 outputs, strides 8/16/32, 2 anchors). A "face"
  is a skin-coloured blob: an anchor's score is the contrast between a skin-colour feature
  averaged over a 4 x stride window and the most skin-like of the four diagonal neighbour
  windows, so a blob is found at the scale that matches its size, edges and corners of big
  blobs do not fire, and a face that fills the whole frame is *not* found (as with real
  detectors) until the image is padded.
* ``2d106det.onnx`` — 192x192 input, 212 outputs: a fixed face-shaped 106-point layout.
* ``glintr100.onnx`` — 112x112 input, 512 outputs: a fixed random projection of the aligned
  crop's 8x8 colour layout (different faces give different embeddings).
* ``1k3d68.onnx`` and ``genderage.onnx`` — present (as in the real pack) and never needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

SKIN = (210, 160, 130)
BACKGROUND = (40, 60, 190)
OPSET = [helper.make_opsetid("", 13)]


def _const(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="hyperlora-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _detector(path: Path) -> None:
    # "skin-ness" = R - B + mean(R, G, B) on the normalised RGB input: skin > 0, blue and black < 0
    weights = np.array([4.0, 1.0, -2.0]) / 3.0
    nodes, inits = [], [_const("rb_w", weights.reshape(1, 3, 1, 1))]
    nodes.append(helper.make_node("Conv", ["input.1", "rb_w"], ["rb"]))
    outs = {"score": [], "bbox": [], "kps": []}
    kps = np.array([[-0.7, -0.5], [0.7, -0.5], [0.0, 0.2], [-0.55, 0.9], [0.55, 0.9]], dtype=np.float32)
    for s in (8, 16, 32):
        # G[j] = mean over a 4s window centred at (j - 4) * s; outside the input counts as skin,
        # so a face touching the border has no contrast there (as with real detectors).
        inits.append(numpy_helper.from_array(np.array([0, 0, 6 * s, 6 * s, 0, 0, 6 * s, 6 * s], np.int64), f"pad{s}"))
        inits.append(_const(f"padv{s}", 1.0))
        nodes.append(helper.make_node("Pad", ["rb", f"pad{s}", f"padv{s}"], [f"P{s}"], mode="constant"))
        nodes.append(helper.make_node("AveragePool", [f"P{s}"], [f"G{s}"], kernel_shape=[4 * s, 4 * s],
                                      strides=[s, s]))
        windows = {"c": (4, -5, 4, -5), "q0": (0, -9, 0, -9), "q1": (0, -9, 8, -1), "q2": (8, -1, 0, -9),
                   "q3": (8, -1, 8, -1)}  # centre, then the four diagonal neighbours at +-4s
        for key, (y0, y1, x0, x1) in windows.items():
            inits.append(numpy_helper.from_array(np.array([y0, x0], np.int64), f"st_{key}{s}"))
            inits.append(numpy_helper.from_array(np.array([y1, x1], np.int64), f"en_{key}{s}"))
            nodes.append(helper.make_node("Slice", [f"G{s}", f"st_{key}{s}", f"en_{key}{s}", "axes23"],
                                          [f"{key}{s}"]))
        nodes.append(helper.make_node("Max", [f"q0{s}", f"q1{s}", f"q2{s}", f"q3{s}"], [f"r{s}"]))
        inits += [_const(f"k{s}", 4.0), _const(f"t{s}", 0.5 + s / 3200.0),
                  _const(f"box{s}", np.full((1, 4), 2.0)), _const(f"kps{s}", kps.reshape(1, 10)),
                  _const(f"zero{s}", 0.0)]
        nodes += [
            helper.make_node("Sub", [f"c{s}", f"r{s}"], [f"d{s}"]),
            helper.make_node("Sub", [f"d{s}", f"t{s}"], [f"e{s}"]),
            helper.make_node("Mul", [f"e{s}", f"k{s}"], [f"l{s}"]),
            helper.make_node("Sigmoid", [f"l{s}"], [f"p{s}"]),
            helper.make_node("Concat", [f"p{s}", f"p{s}"], [f"pp{s}"], axis=1),  # 2 anchors
            helper.make_node("Transpose", [f"pp{s}"], [f"pt{s}"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", [f"pt{s}", "shape_n1"], [f"score_{s}"]),
            helper.make_node("Mul", [f"score_{s}", f"zero{s}"], [f"z{s}"]),
            helper.make_node("Add", [f"z{s}", f"box{s}"], [f"bbox_{s}"]),
            helper.make_node("Add", [f"z{s}", f"kps{s}"], [f"kps_{s}"]),
        ]
        outs["score"].append(helper.make_tensor_value_info(f"score_{s}", TensorProto.FLOAT, [f"n{s}", 1]))
        outs["bbox"].append(helper.make_tensor_value_info(f"bbox_{s}", TensorProto.FLOAT, [f"n{s}", 4]))
        outs["kps"].append(helper.make_tensor_value_info(f"kps_{s}", TensorProto.FLOAT, [f"n{s}", 10]))
    inits.append(numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "shape_n1"))
    inits.append(numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes23"))
    graph = helper.make_graph(
        nodes, "scrfd_synthetic",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        outs["score"] + outs["bbox"] + outs["kps"], inits)
    _save(graph, path)


def _constant_head(path: Path, size: int, values: np.ndarray, in_name: str = "data") -> None:
    """A model with a (1, 3, size, size) input whose output is ``values`` (+ 0 x input)."""
    nodes = [helper.make_node("ReduceMean", [in_name], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "ax"], ["m2"]),
             helper.make_node("Mul", ["m2", "zero"], ["z"]),
             helper.make_node("Add", ["z", "vals"], ["out"])]
    inits = [_const("zero", 0.0), _const("vals", values.reshape(1, -1)),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "ax")]
    graph = helper.make_graph(nodes, path.stem,
                              [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, values.size])], inits)
    _save(graph, path)


def landmarks_106() -> np.ndarray:
    """A face-shaped 106-point layout in the landmark model's [-1, 1] crop coordinates."""
    pts = np.zeros((106, 2), dtype=np.float32)
    contour = [1, 9, 10, 11, 12, 13, 14, 15, 16, 2, 3, 4, 5, 6, 7, 8, 0,
               24, 23, 22, 21, 20, 19, 18, 32, 31, 30, 29, 28, 27, 26, 25, 17]
    for i, idx in enumerate(contour):  # from the right temple round the chin to the left temple
        a = np.pi * i / (len(contour) - 1)
        pts[idx] = (0.55 * np.cos(a), 0.05 + 0.6 * np.sin(a))
    brow = [101, 105, 104, 103, 102, 50, 51, 49, 48, 43]
    for i, idx in enumerate(brow):  # across the forehead, left to right
        pts[idx] = (-0.5 + i / (len(brow) - 1), -0.45 - 0.1 * np.sin(np.pi * i / (len(brow) - 1)))
    rest = [i for i in range(106) if i not in contour and i not in brow]
    rng = np.random.default_rng(0)
    pts[rest] = rng.uniform(-0.35, 0.35, size=(len(rest), 2))
    return pts


def _arcface(path: Path) -> None:
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("AveragePool", ["input.1"], ["p"], kernel_shape=[14, 14], strides=[14, 14]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["fc1"])]
    inits = [_const("w", rng.standard_normal((192, 512)))]
    graph = helper.make_graph(nodes, "arcface_synthetic",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["n", 3, 112, 112])],
                              [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["n", 512])], inits)
    _save(graph, path)


def build_face_pack(folder: str | Path) -> Path:
    """Write the five-file pack into ``folder`` (created); returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _detector(folder / "scrfd_10g_bnkps.onnx")
    _constant_head(folder / "2d106det.onnx", 192, landmarks_106())
    _arcface(folder / "glintr100.onnx")
    _constant_head(folder / "1k3d68.onnx", 192, np.zeros(3309, dtype=np.float32))
    _constant_head(folder / "genderage.onnx", 96, np.array([0.1, 0.9, 0.3], dtype=np.float32))
    return folder


def face_image(size: tuple[int, int] = (320, 320), faces: list[tuple[int, int, int]] | None = None,
               feature: tuple[int, int, int] = (170, 110, 90), seed: int = 0, pattern: int = 0,
               skin: tuple[int, int, int] = SKIN, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """A synthetic photo: blue background with skin-coloured square "faces" (cx, cy, side).

    ``feature`` colours the eye/mouth marks (keep it skin-like), so "different people" differ.
    ``skin``/``background``: other colours; with red = blue in all three (e.g. skin (220, 170, 220),
    features (185, 125, 185), background (40, 40, 40)) the detector also finds the face in an RGB
    array handed to insightface as BGR, as Forge's InstantID preprocessors do.
    ``pattern`` (about -100..100) adds a quadrant pattern to each face's green and blue
    channels; opposite signs give clearly different people (ArcFace cosine < 0 here), a
    pattern of 0 none.
    """
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    for cx, cy, side in faces if faces is not None else [(size[0] // 2, size[1] // 2, size[0] // 3)]:
        h = side / 2
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=skin)
        e = side / 8
        for ex, ey in ((-0.18, -0.12), (0.18, -0.12), (0.0, 0.22)):
            x, y = cx + ex * side, cy + ey * side
            draw.ellipse((x - e, y - e / 2, x + e, y + e / 2), fill=feature)
    if pattern:
        arr = np.asarray(img).astype(np.int16)
        for cx, cy, side in faces if faces is not None else [(size[0] // 2, size[1] // 2, size[0] // 3)]:
            x0, y0, h = int(cx - side / 2), int(cy - side / 2), int(side / 2)
            for qy, qx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                sign = 1 if qy == qx else -1
                arr[y0 + qy * h:y0 + (qy + 1) * h, x0 + qx * h:x0 + (qx + 1) * h, 1:] += sign * pattern
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if seed:
        arr = np.asarray(img).astype(np.int16)
        noise = np.random.default_rng(seed).integers(-6, 7, size=arr.shape)
        img = Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))
    return img
