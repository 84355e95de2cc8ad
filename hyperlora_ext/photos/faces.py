"""Face stage: insightface (antelopev2) detection, 106 landmarks and ArcFace, with the official
crops (``crops``).

Beyond the official plugin, the largest face is used when several are present, a face that fills
the whole frame is found by padding the image before detection, and any size or aspect ratio
works: detection runs on a downscaled copy, crops are read from the original (padded past its
edges) and never exceed ``CROP_SIDE``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..errors import ImageError, MissingModelsError
from .crops import CROP_SIDE, base_crop, crop_scaled, face_box, face_crop
from .images import InputImage

if TYPE_CHECKING:
    import onnxruntime

ANALYSIS_MODULES = ("detection", "landmark_2d_106", "recognition")
ANTELOPEV2_FILES = ("scrfd_10g_bnkps.onnx", "2d106det.onnx", "glintr100.onnx")
RETRY_SIZES = (640, 512, 384, 256)
WORK_SIDE = 1280  # detection runs on a copy downscaled to at most max(this, 2 x det size) px a side
LANDMARK_SIDE = 512  # the 106-point model (192 px input) reads a crop of at most this size
MAX_ASPECT = 32  # detector inputs are padded (right/bottom, as its letterbox does) to at most 1:32


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
        self.work_side = max(WORK_SIDE, 2 * det_size)
        self._lock = threading.Lock()

    def _detect(self, bgr: np.ndarray) -> Any:
        """Largest detection (with its 5 key points) at the first detector size that finds one."""
        from insightface.app.common import Face

        h, w = bgr.shape[:2]
        need_h, need_w = max(h, -(-w // MAX_ASPECT)), max(w, -(-h // MAX_ASPECT))
        if (need_h, need_w) != (h, w):  # a 1:1000 strip would be resized to 0 px by the detector
            bgr = np.pad(bgr, ((0, need_h - h), (0, need_w - w), (0, 0)))
        det = self.app.det_model
        for size in self.sizes:
            bboxes, kpss = det.detect(bgr, input_size=(size, size), max_num=0)
            if not len(bboxes) or kpss is None:
                continue
            sides = np.stack([bboxes[:, 2] - bboxes[:, 0], bboxes[:, 3] - bboxes[:, 1]], axis=1)
            usable = (np.isfinite(bboxes).all(axis=1) & np.isfinite(kpss).all(axis=(1, 2))
                      & (sides >= 1).all(axis=1))
            if usable.any():
                i = int(np.argmax(np.where(usable, sides.prod(axis=1), -1.0)))
                return Face(bbox=bboxes[i, :4], kps=kpss[i], det_score=bboxes[i, 4])
        return None

    def _find(self, bgr: np.ndarray) -> Any:
        """``_detect``, then on a padded copy (faces that fill the frame); source coordinates."""
        face = self._detect(bgr)
        if face is None:
            offset = max(bgr.shape[:2]) // 2
            face = self._detect(np.pad(bgr, ((offset, offset), (offset, offset), (0, 0))))
            if face is not None:
                face.bbox, face.kps = face.bbox - offset, face.kps - offset
        return face

    def find_face(self, image: Image.Image) -> Any:
        """Largest face with its 106 landmarks (source pixels), or None.

        Detection runs on a copy downscaled to ``work_side`` (retrying smaller detector sizes,
        then padded); the landmarks are read from a bounded crop of the full-size image."""
        from insightface.app.common import Face

        shrink = min(1.0, self.work_side / max(image.size))
        work = image
        if shrink < 1.0:
            work = image.resize((max(1, round(image.width * shrink)), max(1, round(image.height * shrink))),
                                Image.Resampling.BILINEAR, reducing_gap=2.0)
        face = self._find(_bgr(work))
        if face is None:
            return None
        scale = np.array([work.width / image.width, work.height / image.height], dtype=np.float32)
        bbox, kps = face.bbox / np.tile(scale, 2), face.kps / scale
        (x0, y0), (x1, y1) = bbox[:2], bbox[2:]
        m = max(x1 - x0, y1 - y0) * 0.8  # the landmark model reads centre +- 0.75 x the box side
        crop, origin, s = crop_scaled(image, ((x0 + x1) / 2 - m, (y0 + y1) / 2 - m,
                                              (x0 + x1) / 2 + m, (y0 + y1) / 2 + m), LANDMARK_SIDE)
        local = Face(bbox=(bbox - np.tile(origin, 2)) * np.tile(s, 2), kps=(kps - origin) * s)
        self.app.models["landmark_2d_106"].get(_bgr(crop), local)
        lmk = np.asarray(local.landmark_2d_106, dtype=np.float32)[:, :2] / s + origin
        return Face(bbox=bbox, kps=kps, det_score=face.det_score, landmark_2d_106=lmk)

    def embed(self, bgr: np.ndarray, face: Any) -> np.ndarray:
        """L2-normalised ArcFace embedding of ``face`` (its 5 key points) in ``bgr``."""
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
        the Base-LoRA crop. Returns None when the image holds no face; crops never exceed
        ``CROP_SIDE``, whatever the photo's size. Raises ``ImageError`` naming the image if
        OpenCV cannot process it."""
        import cv2

        with self._lock:
            try:
                return self._analyze(image, remove_bg, grayscale, base)
            except cv2.error as exc:
                raise ImageError(f"{image.name}: face analysis failed on this {image.pixels.width}x"
                                 f"{image.pixels.height} image ({str(exc).strip().splitlines()[-1]}); "
                                 "crop it around the face or save it at a more usual size") from exc

    def _analyze(self, image: InputImage, remove_bg: bool, grayscale: bool, base: bool) -> FaceResult | None:
        src = image.pixels
        face = self.find_face(src)
        if face is None:
            return None
        lmk = np.asarray(face.landmark_2d_106[:106, :2], dtype=np.float32)
        (cx, cy), half = face_box(lmk)
        if not np.isfinite(lmk).all() or half < 1:
            return None
        clip_image = face_crop(src, lmk, remove_bg)
        if grayscale:
            clip_image = clip_image.convert("L").convert("RGB")
        # ArcFace on a 2x crop of the original image, detected again as the official plugin does
        big = 2 * half
        arc, origin, scale = crop_scaled(src, (cx - big, cy - big, cx + big, cy + big), CROP_SIDE)
        arc_bgr = _bgr(arc)
        arc_face = self._find(arc_bgr)
        notes = []
        if arc_face is None:  # fall back to the first detection, moved into the crop
            from insightface.app.common import Face

            arc_face = Face(bbox=(face.bbox - np.tile(origin, 2)) * np.tile(scale, 2),
                            kps=(face.kps - origin) * scale)
            notes.append("ArcFace crop re-detection failed; used the first detection")
        embedding = self.embed(arc_bgr, arc_face)
        return FaceResult(
            name=image.name, digest=image.digest, clip_image=clip_image, embedding=embedding,
            bbox=np.asarray(face.bbox, dtype=np.float32), landmarks=lmk,
            base_image=base_crop(src, lmk) if base else None, notes=notes,
        )
