"""The face models: insightface antelopev2 (detection, 106 landmarks, ArcFace) and CLIP ViT-L/14.

One object (``FaceModels``), independent of the HyperLoRA variant: every checkpoint reads faces
the same way, so the model manager owns one set, the photo pipeline composes it with a loaded
hypernetwork, and the likeness score and the photo check use it without any hypernetwork. Each
model loads on first use. CLIP's device and dtype are the configured ones; it rests and moves by
its own ``placement`` (offloaded like the hypernetwork, room made before it goes to a GPU). Changing
the ONNX Runtime providers or the detector size (``configure``) drops the analyzer only.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image

from ..photos.faces import FaceAnalyzer, default_providers, find_pack
from .encoders import ClipEncoder
from .locations import ModelLocations
from .placement import Placement, decide_offload, is_accelerator
from .precision import Precision

CLIP = "clip"  # the placement's name for the CLIP vision model


def pack_bytes(pack_dir: Path) -> int:
    """Bytes of the pack's ONNX files: what its sessions take on a GPU provider, at most (insightface
    opens every file of the folder, then keeps the modules it was asked for)."""
    return sum(p.stat().st_size for p in find_pack(pack_dir).glob("*.onnx"))


class FaceModels:
    """The face analyzer and CLIP for ``locations`` (thread-safe; each loads on first use).

    ``precision``: CLIP's device and dtype (``compute``); ``offload``: CLIP's policy ("auto",
    "resident", "offload", as the hypernetwork's); ``providers`` / ``det_size``: ONNX Runtime's
    providers (default: CUDA when available, then the CPU) and the detector's input side in pixels;
    ``make_room(bytes)``: optional host hook called before either model goes to a GPU.
    ``version`` changes whenever a model is replaced (results computed before are stale).
    """

    def __init__(self, locations: ModelLocations, precision: Precision, providers: Sequence[str] | None = None,
                 det_size: int = 640, offload: str = "auto", make_room: Callable[[int], None] | None = None) -> None:
        self.locations = locations
        self.precision = precision
        self.providers = list(providers) if providers else None
        self.det_size = det_size
        self.placement = Placement(precision.device, decide_offload(precision.device, offload), make_room)
        self.version = 0
        self._analyzer: FaceAnalyzer | None = None
        self._clip: ClipEncoder | None = None
        self._lock = threading.RLock()

    @property
    def analyzer_loaded(self) -> bool:
        return self._analyzer is not None

    @property
    def clip_loaded(self) -> bool:
        return self._clip is not None

    def analyzer(self) -> FaceAnalyzer:
        """The antelopev2 analyzer (loaded on first use; ``MissingModelsError`` when absent). On a GPU
        provider the host makes room for the pack first."""
        if self._analyzer is not None:  # no lock once loaded: callers may hold CLIP's placement
            return self._analyzer
        with self._lock:
            if self._analyzer is None:
                providers = self.providers or default_providers()
                if is_accelerator(providers[0]):
                    self.placement.make_room("face analyzer", pack_bytes(self.locations.antelopev2), providers[0])
                self._analyzer = FaceAnalyzer(self.locations.antelopev2, providers=providers,
                                              det_size=self.det_size)
            return self._analyzer

    def clip_encoder(self) -> ClipEncoder:
        """CLIP (loaded on first use into RAM, then placed: room first when it rests on a GPU);
        ``MissingModelsError`` when its files are absent."""
        if self._clip is not None:  # no lock once loaded (the lock order is: this lock, then the placement's)
            return self._clip
        with self._lock:
            if self._clip is None:
                locs, compute = self.locations, self.precision.compute
                clip = ClipEncoder(locs.clip_vit, locs.clip_processor, "cpu", compute)
                self.placement.place(CLIP, clip.model, compute)
                self._clip = clip
            return self._clip

    def use(self) -> AbstractContextManager[None]:
        """Hold CLIP on its compute device for the block (several ``clip_features`` calls, one move)."""
        return self.placement.use(CLIP)

    def clip_features(self, images: list[Image.Image]) -> torch.Tensor:
        """Penultimate CLIP hidden states (N, T, C) of ``images``, in CLIP's dtype on its compute device."""
        encoder = self.clip_encoder()
        with self.use():
            return encoder(images)

    def configure(self, providers: Sequence[str] | None, det_size: int) -> None:
        """New ONNX Runtime providers or detector size: the analyzer loads again on next use; CLIP stays."""
        providers = list(providers) if providers else None
        with self._lock:
            if (providers, det_size) != (self.providers, self.det_size):
                self.providers, self.det_size = providers, det_size
                self._analyzer = None
                self.version += 1

    def set_offload(self, policy: str) -> None:
        """Change CLIP's offload policy ("auto", "resident", "offload")."""
        self.placement.set_offload(decide_offload(self.precision.device, policy))
