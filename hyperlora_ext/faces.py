"""Face stage: insightface (antelopev2) detection, 106 landmarks, ArcFace, and the official crops.

Crops follow the official HyperLoRA plugin; beyond it, the largest face is used when
several are present, a face that fills the whole frame is found by padding the image
before detection, and any size or aspect ratio works: detection runs on a downscaled copy,
crops are read from the original (padded past its edges) and never exceed ``CROP_SIDE``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .errors import ImageError, MissingModelsError
from .images import InputImage

if TYPE_CHECKING:
    import onnxruntime

ANALYSIS_MODULES = ("detection", "landmark_2d_106", "recognition")
ANTELOPEV2_FILES = ("scrfd_10g_bnkps.onnx", "2d106det.onnx", "glintr100.onnx")
RETRY_SIZES = (640, 512, 384, 256)
WORK_SIDE = 1280  # detection runs on a copy downscaled to at most max(this, 2 x det size) px a side
CROP_SIDE = 1024  # face crops (CLIP, ArcFace, Base) are downscaled to at most this many px a side
LANDMARK_SIDE = 512  # the 106-point model (192 px input) reads a crop of at most this size
MAX_ASPECT = 32  # detector inputs are padded (right/bottom, as its letterbox does) to at most 1:32
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


def crop_scaled(image: Image.Image, box: tuple[float, float, float, float], max_side: int,
                fill: int | tuple[int, ...] = 0) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """``image.crop(box)`` downscaled so no side exceeds ``max_side``, reading only the pixels
    inside the box; parts of the box past the image edge are padded with ``fill``.

    Returns (crop, origin, scale): a source point ``p`` lands at ``(p - origin) * scale``.
    """
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    shrink = min(1.0, max_side / max(w, h))
    out_w, out_h = max(1, round(w * shrink)), max(1, round(h * shrink))
    sx, sy = out_w / w, out_h / h
    out = Image.new(image.mode, (out_w, out_h), fill)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + w, image.width), min(y0 + h, image.height)
    if ix0 < ix1 and iy0 < iy1:
        dx0, dy0 = round((ix0 - x0) * sx), round((iy0 - y0) * sy)
        dx1, dy1 = round((ix1 - x0) * sx), round((iy1 - y0) * sy)
        if (dx1 - dx0, dy1 - dy0) == (ix1 - ix0, iy1 - iy0):
            part = image.crop((ix0, iy0, ix1, iy1))
        elif dx1 > dx0 and dy1 > dy0:
            part = image.resize((dx1 - dx0, dy1 - dy0), Image.BICUBIC, box=(ix0, iy0, ix1, iy1), reducing_gap=2.0)
        else:
            part = None
        if part is not None:
            out.paste(part, (dx0, dy0))
    return out, np.array([x0, y0], dtype=np.float32), np.array([sx, sy], dtype=np.float32)


def _outline_mask(landmarks: np.ndarray, mask_scale: float, origin: np.ndarray, scale: np.ndarray):
    """The soft face-outline mask of the official plugin (polygon blurred at 512 px) in a crop's
    frame: (mask, paste position, outline box in source pixels)."""
    pts = landmarks[OUTLINE]
    center = pts.mean(axis=0)
    half = max(float((pts.max(axis=0) - pts.min(axis=0)).max()) * 0.8, 0.5)
    box = (center[0] - half, center[1] - half, center[0] + half, center[1] + half)
    poly = ((pts - center) * mask_scale + half) * (512.0 / (2 * half))
    mask = Image.new("L", (512, 512), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in poly], fill=255)
    size = tuple(max(1, round(2 * half * s)) for s in scale)
    mask = mask.filter(ImageFilter.GaussianBlur(radius=15)).resize(size)
    pos = tuple(int(round(v)) for v in (np.array(box[:2]) - origin) * scale)
    return mask, pos, box


def face_crop(image: Image.Image, landmarks: np.ndarray, remove_bg: bool = True,
              max_side: int = CROP_SIDE) -> Image.Image:
    """The CLIP crop (``face_box``), at most ``max_side`` px a side; with ``remove_bg`` only the
    face inside its landmark outline (soft edge) is kept, on a flat grey canvas."""
    (cx, cy), half = face_box(landmarks)
    crop, origin, scale = crop_scaled(image, (cx - half, cy - half, cx + half, cy + half), max_side)
    if not remove_bg:
        return crop
    outline, pos, _ = _outline_mask(landmarks, 1.0, origin, scale)
    mask = Image.new("L", crop.size, 0)
    mask.paste(outline, pos)
    return Image.composite(crop, Image.new("RGB", crop.size, GREY), mask)


def base_crop(image: Image.Image, landmarks: np.ndarray, max_side: int = CROP_SIDE) -> Image.Image:
    """The Base-LoRA input: the face region strongly blurred, the rest (clothes, scene) kept."""
    (cx, cy), half = face_box(landmarks)
    box = (max(0, cx - half), max(0, cy - half), min(image.width, cx + half), min(image.height, cy + half))
    out, origin, scale = crop_scaled(image, box, max_side)
    mask, pos, outline_box = _outline_mask(landmarks, 1.4, origin, scale)
    blurred = crop_scaled(image, outline_box, 512)[0].resize((512, 512))
    blurred = blurred.filter(ImageFilter.GaussianBlur(radius=45)).resize(mask.size)
    out.paste(blurred, pos, mask)
    return out


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

    def _detect(self, bgr: np.ndarray):
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

    def _find(self, bgr: np.ndarray):
        """``_detect``, then on a padded copy (faces that fill the frame); source coordinates."""
        face = self._detect(bgr)
        if face is None:
            offset = max(bgr.shape[:2]) // 2
            face = self._detect(np.pad(bgr, ((offset, offset), (offset, offset), (0, 0))))
            if face is not None:
                face.bbox, face.kps = face.bbox - offset, face.kps - offset
        return face

    def find_face(self, image: Image.Image):
        """Largest face with its 106 landmarks (source pixels), or None.

        Detection runs on a copy downscaled to ``work_side`` (retrying smaller detector sizes,
        then padded); the landmarks are read from a bounded crop of the full-size image."""
        from insightface.app.common import Face

        shrink = min(1.0, self.work_side / max(image.size))
        work = image
        if shrink < 1.0:
            work = image.resize((max(1, round(image.width * shrink)), max(1, round(image.height * shrink))),
                                Image.BILINEAR, reducing_gap=2.0)
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

    def embed(self, bgr: np.ndarray, face) -> np.ndarray:
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
