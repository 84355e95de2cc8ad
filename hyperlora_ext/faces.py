"""Face stage: insightface (antelopev2) detection, 106 landmarks, ArcFace, and the official crops.

Crops follow the official HyperLoRA plugin; beyond it, the largest face is used when
several are present, and a face that fills the whole frame is found by padding the image
before detection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .errors import MissingModelsError
from .images import InputImage

if TYPE_CHECKING:
    import onnxruntime

ANALYSIS_MODULES = ("detection", "landmark_2d_106", "recognition")
ANTELOPEV2_FILES = ("scrfd_10g_bnkps.onnx", "2d106det.onnx", "glintr100.onnx")
RETRY_SIZES = (640, 512, 384, 256)
GREY = (127, 127, 127)
# Face outline (jaw 0-32) then brow / forehead points, in polygon order (official plugin).
OUTLINE = [1, 9, 10, 11, 12, 13, 14, 15, 16, 2, 3, 4, 5, 6, 7, 8, 0,
           24, 23, 22, 21, 20, 19, 18, 32, 31, 30, 29, 28, 27, 26, 25, 17,
           101, 105, 104, 103, 102, 50, 51, 49, 48, 43]


@dataclass
class FaceResult:
    """What the face stage extracts from one image.

    ``clip_image``: square crop (background removed unless disabled) for CLIP;
    ``embedding``: L2-normalised ArcFace embedding (512,) float32;
    ``base_image``: crop with the face blurred, for a Base-LoRA (only when asked);
    ``bbox`` (x1, y1, x2, y2) and ``landmarks`` (106, 2) in source pixels.
    """

    name: str
    digest: str
    clip_image: Image.Image
    embedding: np.ndarray
    bbox: np.ndarray
    landmarks: np.ndarray
    base_image: Image.Image | None = None
    notes: list[str] = field(default_factory=list)


def face_box(landmarks: np.ndarray) -> tuple[tuple[float, float], float]:
    """Centre and half-side of the CLIP crop: 1.5 x the landmark extent, raised by 1/8."""
    x_min, y_min = landmarks.min(axis=0)
    x_max, y_max = landmarks.max(axis=0)
    half = max(x_max - x_min, y_max - y_min) * 0.75
    return ((x_min + x_max) * 0.5, (y_min + y_max) * 0.5 - half * 0.125), half


def _outline_crop(image: Image.Image, landmarks: np.ndarray, mask_scale: float):
    pts = landmarks[OUTLINE]
    center = pts.mean(axis=0, keepdims=True)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in (pts - center) * mask_scale + center], fill=255)
    x_min, y_min = pts.min(axis=0)
    x_max, y_max = pts.max(axis=0)
    half = max(x_max - x_min, y_max - y_min) * 0.8
    cx, cy = center[0]
    box = (cx - half, cy - half, cx + half, cy + half)
    return image.crop(box), mask.crop(box), (cx, cy), half


def remove_background(image: Image.Image, landmarks: np.ndarray) -> Image.Image:
    """Keep the face inside its landmark outline (soft edge) on a flat grey canvas."""
    crop, mask, (cx, cy), half = _outline_crop(image, landmarks, 1.0)
    mask = mask.resize((512, 512)).filter(ImageFilter.GaussianBlur(radius=15)).resize(crop.size)
    canvas = Image.new("RGB", image.size, GREY)
    canvas.paste(crop, (int(cx - half), int(cy - half)), mask)
    return canvas


def blur_face(image: Image.Image, landmarks: np.ndarray) -> Image.Image:
    """The Base-LoRA input: the face region strongly blurred, the rest (clothes, scene) kept."""
    crop, mask, (cx, cy), half = _outline_crop(image, landmarks, 1.4)
    size = crop.size
    crop = crop.resize((512, 512)).filter(ImageFilter.GaussianBlur(radius=45)).resize(size)
    mask = mask.resize((512, 512)).filter(ImageFilter.GaussianBlur(radius=15)).resize(size)
    out = image.copy()
    out.paste(crop, (int(cx - half), int(cy - half)), mask)
    (cx, cy), half = face_box(landmarks)
    box = (max(0, cx - half), max(0, cy - half), min(out.width, cx + half), min(out.height, cy + half))
    return out.crop(box)


def _bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def default_providers() -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def find_pack(pack_dir: str | Path) -> Path:
    """The folder holding the pack's .onnx files: ``pack_dir`` itself, or the nested
    ``pack_dir/<name>`` that unzipping the release archive in place produces."""
    pack_dir = Path(pack_dir).resolve()
    for candidate in (pack_dir, pack_dir / pack_dir.name):
        if candidate.is_dir() and any(candidate.glob("*.onnx")):
            return candidate
    raise MissingModelsError(
        f"insightface antelopev2 pack not found: {pack_dir} holds no .onnx files. Put "
        f"{', '.join(ANTELOPEV2_FILES)} there (or use the first-use download).",
        [(f, str(pack_dir)) for f in ANTELOPEV2_FILES],
    )


def session_options() -> onnxruntime.SessionOptions:
    """ONNX Runtime options for the face models: worker threads sleep when a run ends instead of
    spinning, which otherwise slows the CPU work right after face analysis (measured: a 0.7 ms
    torch op took 58-84 ms on a 16-core machine). insightface 0.7.3 ignores them; 2.x applies them."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class FaceAnalyzer:
    """The antelopev2 pack through ``insightface.app.FaceAnalysis``, loading only
    detection, 106-point landmarks and recognition. One analysis at a time (thread-safe).
    """

    def __init__(self, pack_dir: str | Path, providers: list[str] | None = None,
                 det_size: int = 640, det_thresh: float = 0.5) -> None:
        pack_dir = find_pack(pack_dir)
        from insightface.app import FaceAnalysis

        self.providers = providers or default_providers()
        # An absolute, existing folder never triggers insightface's own download.
        self.app = FaceAnalysis(name=str(pack_dir), root=str(pack_dir.parent),
                                providers=self.providers, allowed_modules=list(ANALYSIS_MODULES),
                                sess_options=session_options())
        absent = [m for m in ANALYSIS_MODULES if m not in self.app.models]
        if absent:
            raise MissingModelsError(f"insightface pack {pack_dir} has no model for: {', '.join(absent)}. "
                                     f"It needs {', '.join(ANTELOPEV2_FILES)}.",
                                     [(m, str(pack_dir)) for m in absent])
        ctx = 0 if "CUDAExecutionProvider" in self.providers else -1
        self.app.prepare(ctx_id=ctx, det_size=(det_size, det_size), det_thresh=det_thresh)
        self.sizes = [det_size] + [s for s in RETRY_SIZES if s < det_size]
        self._lock = threading.Lock()

    def _detect(self, bgr: np.ndarray):
        from insightface.app.common import Face

        det = self.app.det_model
        for size in self.sizes:
            bboxes, kpss = det.detect(bgr, input_size=(size, size), max_num=0)
            if len(bboxes):
                areas = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])
                i = int(np.argmax(areas))
                return Face(bbox=bboxes[i, :4], kps=None if kpss is None else kpss[i], det_score=bboxes[i, 4])
        return None

    def find_face(self, bgr: np.ndarray):
        """Largest face with its 106 landmarks, or None. Retries smaller detector sizes,
        then a padded copy (faces that fill the frame)."""
        face, offset = self._detect(bgr), 0
        if face is None:
            offset = max(bgr.shape[:2]) // 2
            padded = np.pad(bgr, ((offset, offset), (offset, offset), (0, 0)))
            face = self._detect(padded)
            if face is None:
                return None
            bgr = padded
        self.app.models["landmark_2d_106"].get(bgr, face)
        for key in ("bbox", "kps", "landmark_2d_106"):
            if face[key] is not None:
                face[key] = face[key] - offset
        return face

    def embed(self, bgr: np.ndarray, face) -> np.ndarray:
        self.app.models["recognition"].get(bgr, face)
        return np.asarray(face.normed_embedding, dtype=np.float32)

    def all_embeddings(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        """Every face in an RGB image: boxes (N, 4) (x1, y1, x2, y2) and L2-normalised ArcFace
        embeddings (N, 512) float32, as ``FaceAnalysis.get`` computes them (aligned on the
        detector's 5 points), at the first detector size that finds a face. N may be 0."""
        from insightface.app.common import Face

        with self._lock:
            bgr = _bgr(image.convert("RGB"))
            for size in self.sizes:
                bboxes, kpss = self.app.det_model.detect(bgr, input_size=(size, size), max_num=0)
                if len(bboxes):
                    break
            faces = [Face(bbox=b[:4], kps=k, det_score=b[4]) for b, k in zip(bboxes, kpss)]
            embeddings = [self.embed(bgr, face) for face in faces]
        return (np.asarray(bboxes[:, :4], dtype=np.float32).reshape(-1, 4),
                np.asarray(embeddings, dtype=np.float32).reshape(-1, 512))

    def analyze(self, image: InputImage, remove_bg: bool = True, grayscale: bool = False,
                base: bool = False) -> FaceResult | None:
        """Detect the largest face and build the CLIP crop, ArcFace embedding and (optionally)
        the Base-LoRA crop. Returns None when the image holds no face."""
        with self._lock:
            src = image.pixels
            face = self.find_face(_bgr(src))
            if face is None:
                return None
            lmk = np.asarray(face.landmark_2d_106[:106, :2], dtype=np.float32)
            clip_src = remove_background(src, lmk) if remove_bg else src
            (cx, cy), half = face_box(lmk)
            clip_image = clip_src.crop((cx - half, cy - half, cx + half, cy + half))
            if grayscale:
                clip_image = clip_image.convert("L").convert("RGB")
            # ArcFace on a 2x crop of the original image, detected again as the official plugin does
            big = 2 * half
            box = (cx - big, cy - big, cx + big, cy + big)
            arc_bgr = _bgr(src.crop(box))
            arc_face = self.find_face(arc_bgr)
            notes = []
            if arc_face is None:  # fall back to the first detection, moved into the crop
                from insightface.app.common import Face

                shift = np.array([round(box[0]), round(box[1])], dtype=np.float32)
                arc_face = Face(bbox=face.bbox - np.tile(shift, 2), kps=face.kps - shift)
                notes.append("ArcFace crop re-detection failed; used the first detection")
            embedding = self.embed(arc_bgr, arc_face)
            return FaceResult(
                name=image.name, digest=image.digest, clip_image=clip_image, embedding=embedding,
                bbox=np.asarray(face.bbox, dtype=np.float32), landmarks=lmk,
                base_image=blur_face(src, lmk) if base else None, notes=notes,
            )
