"""HTTP API under ``/hyperlora/v1`` (mounted when the WebUI runs with ``--api``).

Routes: ``GET /models``, ``GET|POST /identities``, ``POST /identities/mix``, ``GET|DELETE
/identities/{name}``, ``GET /identities/{name}/crops``, ``POST /identities/{name}/rename``, ``POST
/identities/{name}/lora`` and ``POST /likeness``: ``{"image": base64, "identities": [names]}`` ->
``photos.likeness.likeness_json`` (each identity scored on its own face, one face per identity,
faces numbered left to right: per identity ``name``, ``score``, ``face``, ``box`` [x1, y1, x2, y2]
in pixels, null without a face; ``text`` as in the infotext; ``skipped``: identities without a
reference embedding, such as sliders).

Same auth as the WebUI's own API (``--api-auth user:pass,...``, HTTP Basic), GPU work under
the host's queue lock. Errors: one status per kind of error, the same on every route
(``status.STATUS``, docs/api.md); anything else, a ``KeyError`` from a bug included, is a 500 whose ``detail`` names
what failed (traceback in the server log), never FastAPI's bare 500. Works with pydantic 1
(A1111) and 2 (Forge).
"""

from __future__ import annotations

from secrets import compare_digest
from typing import Callable

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from ...identities.identity import Identity
from ...photos.images import photo_count_problem
from ...photos.likeness import likeness_json, unscored
from ...version import __version__
from ..core.host_hooks import HostHooks
from ..core.service import HyperLoRAService
from .schemas import (
    CreateRequest,
    LikenessRequest,
    MixRequest,
    RenameRequest,
    SaveLoRARequest,
    decode_image,
    identity_json,
    png_base64,
)
from .status import ErrorRoute, http_errors

PREFIX = "/hyperlora/v1"


def basic_auth(credentials: dict[str, str]) -> Callable[..., bool]:
    """A dependency that checks HTTP Basic credentials like the WebUI's ``Api.auth``."""
    def check(given: HTTPBasicCredentials = Depends(HTTPBasic())) -> bool:
        expected = credentials.get(given.username)
        if expected is not None and compare_digest(given.password, expected):
            return True
        raise HTTPException(401, "Incorrect username or password", headers={"WWW-Authenticate": "Basic"})
    return check


def parse_api_auth(api_auth: str | None) -> dict[str, str] | None:
    """``user:pass,user2:pass2`` (the WebUI's ``--api-auth``) -> dict, or None when unset."""
    if not api_auth:
        return None
    return dict(item.split(":", 1) for item in api_auth.split(",") if ":" in item)


def make_router(service: HyperLoRAService, hooks: HostHooks, credentials: dict[str, str] | None = None
                ) -> APIRouter:
    deps = [Depends(basic_auth(credentials))] if credentials else []
    router = APIRouter(prefix=PREFIX, dependencies=deps, tags=["HyperLoRA"], route_class=ErrorRoute)

    def get_identity(name: str) -> Identity:
        with http_errors():
            return service.identities.get(name)

    def with_lora_file(out: dict, name: str) -> dict:
        """``out`` plus ``lora_file``: what publishing did for identity ``name`` (when the setting is on)."""
        note = service.publish_note(name)
        if note:
            out["lora_file"] = note
        return out

    @router.get("/version")
    def version() -> dict:
        return {"version": __version__}

    @router.get("/models")
    def models() -> dict:
        locs = service.models.locations
        return {"models_dir": str(locs.root), "variants": locs.variants(),
                "identities_dir": str(service.config.identity_folder)}

    @router.get("/identities")
    def list_identities() -> dict:
        good, bad = service.identities.store.load_all()
        weight = service.config.default_weight
        return {"identities": [identity_json(i, weight) for i in good.values()], "damaged": bad}

    @router.post("/identities")
    def create(req: CreateRequest) -> dict:
        if not req.images:
            raise HTTPException(400, "images is empty: send one or more base64 photos of the face")
        if photo_count_problem(len(req.images)):  # the panel's limit (photos.images.MAX_PHOTOS)
            raise HTTPException(400, photo_count_problem(len(req.images)))
        images = [decode_image(d, f"images[{i}]") for i, d in enumerate(req.images)]
        with http_errors():
            pred, check = hooks.create_waiting(lambda: service.create_checked(
                images, req.name, req.variant, req.remove_background, req.grayscale,
                [f"images[{i}]" for i in range(len(images))], overwrite=req.overwrite, drop_flagged=req.drop_flagged))
        out = identity_json(pred.identity, service.config.default_weight)
        out.update(skipped=pred.skipped, timings=pred.timings, crops=[png_base64(c) for c in pred.identity.crops],
                   photo_check=check.to_dict())
        return with_lora_file(out, pred.identity.name)

    @router.post("/identities/mix")
    def mix(req: MixRequest) -> dict:
        with http_errors():
            identity = service.mix(req.expression, req.name, req.overwrite)
        out = identity_json(identity, service.config.default_weight)
        out["parents"] = [{"name": p.name, "hash": p.hash, "factor": p.factor} for p in identity.parents]
        return with_lora_file(out, identity.name)

    @router.get("/identities/{name}")
    def get(name: str) -> dict:
        return identity_json(get_identity(name), service.config.default_weight)

    @router.get("/identities/{name}/crops")
    def crops(name: str) -> dict:
        return {"crops": [png_base64(c) for c in get_identity(name).crops]}

    @router.delete("/identities/{name}")
    def delete(name: str) -> dict:
        with http_errors():
            return {"deleted": service.delete(name)}

    @router.post("/identities/{name}/rename")
    def rename(name: str, req: RenameRequest) -> dict:
        with http_errors():
            new = service.rename(name, req.new_name)
        return with_lora_file({"name": new}, new)

    @router.get("/publishing")
    def publishing() -> dict:
        """Setting "keep every identity as a LoRA file": on or off, a publication of all identities running
        or done in this process, and the files published."""
        publisher = service.publisher
        if publisher is None:
            return {"enabled": False}
        status = publisher.status
        return {"enabled": publisher.enabled, "folder": str(publisher.folder), "running": status.running,
                "done": status.done, "total": status.total, "problems": status.problems,
                "files": [f.name for f in publisher.published_files()]}

    @router.post("/identities/{name}/lora")
    def save_lora(name: str, req: SaveLoRARequest) -> dict:
        get_identity(name)
        with http_errors(), hooks.hold_gpu():
            path = service.save_lora(name, hooks.lora_dir(), req.file_name, req.base_weight, req.overwrite)
        hooks.lora_saved(path)
        return {"path": str(path), "name": path.stem,
                "tag": f"<lora:{path.stem}:{service.config.default_weight:g}>"}

    @router.post("/likeness")
    def score_likeness(req: LikenessRequest) -> dict:
        if not req.identities:
            raise HTTPException(400, "identities is empty: name one or more stored identities")
        image = decode_image(req.image, "image")
        found: dict[str, Identity] = {}
        for name in req.identities:
            identity = get_identity(name)
            found.setdefault(identity.name, identity)  # a name given twice (any case) is scored once
        skipped = unscored(found)
        with http_errors(), hooks.hold_gpu():
            scores = service.likeness(image, [i for n, i in found.items() if n not in skipped])
        return likeness_json(scores, skipped)

    return router
