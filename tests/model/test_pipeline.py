"""Photos -> identity -> LoRA through the real stages, cache, identity files, saving LoRAs."""

import io

import numpy as np
import pytest
import torch
from face_pack import face_image
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

import hyperlora_ext
from hyperlora_ext import HyperLoRAError, Identity, NoFaceError, save_lora
from hyperlora_ext.lora import lora_metadata


def png(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


ALICE = [face_image(feature=(170, 110, 90), seed=s) for s in (1, 2)]
BOB = face_image(feature=(250, 215, 190), seed=4)


def test_predict_equals_features_path(model):
    model.clear_cache()
    pred = model.predict(ALICE, name="alice", names=["a1.png", "a2.png"])
    assert [f.name for f in pred.faces] == ["a1.png", "a2.png"] and not pred.skipped
    ident = pred.identity
    assert ident.tokens.shape == (32, 8) and torch.allclose(ident.tokens.norm(dim=-1), torch.ones(32), atol=1e-5)
    assert ident.variant == "tiny_id" and len(ident.source_digests) == 2 and len(ident.crops) == 2
    # the same result through the public features API
    clip = model.face_models.clip_features([f.clip_image for f in pred.faces])
    ids = torch.from_numpy(np.stack([f.embedding for f in pred.faces]))
    direct = model.features_to_lora(clip, ids)
    expanded = model.expand(ident)
    for k in direct:
        torch.testing.assert_close(expanded[k], direct[k], atol=1e-5, rtol=1e-4)
    assert {"decode", "faces", "clip", "hypernet", "pool"} <= set(pred.timings)


def test_cache_hits_return_the_same_identity(model):
    model.clear_cache()
    first = model.predict(ALICE)
    again = model.predict([png(i) for i in ALICE])  # same pixels, different container
    assert first.cache_hits == 0 and again.cache_hits == 2
    assert torch.equal(first.identity.tokens, again.identity.tokens)
    assert first.identity.hash == again.identity.hash
    other = model.predict(ALICE, remove_background=False)  # options are part of the key
    assert other.cache_hits == 0 and other.identity.hash != first.identity.hash
    mixed = model.predict(ALICE + [BOB])
    assert mixed.cache_hits == 2 and mixed.identity.hash != first.identity.hash


def test_images_without_faces_are_reported_and_skipped(model):
    pred = model.predict([ALICE[0], face_image(faces=[]), b"not an image"], names=["ok.png", "wall.png", "x.txt"])
    assert set(pred.skipped) == {"wall.png", "x.txt"}
    assert pred.skipped["wall.png"] == "no face found" and "not an image" in pred.skipped["x.txt"]
    assert len(pred.faces) == 1
    with pytest.raises(NoFaceError, match="wall.png: no face found") as err:
        model.predict([face_image(faces=[])], names=["wall.png"])
    assert err.value.failures == {"wall.png": "no face found"}


def test_identity_round_trip(model, tmp_path):
    ident = model.predict(ALICE, name="alice").identity
    path = ident.save(tmp_path / "alice.safetensors")
    assert path.stat().st_size < 200_000
    back = Identity.load(path)
    assert torch.equal(back.tokens, ident.tokens) and back.hash == ident.hash
    assert back.name == "alice" and back.source_digests == ident.source_digests and len(back.crops) == 2
    a, b = model.expand(ident), model.expand(back)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_identity_file_errors(model, tmp_path):
    ident = model.predict(ALICE).identity
    lora_path = save_lora(model.expand(ident), tmp_path / "x.safetensors")
    with pytest.raises(HyperLoRAError, match="x.safetensors: not a HyperLoRA identity file"):
        Identity.load(lora_path)
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(HyperLoRAError, match="bad.safetensors: cannot read identity file"):
        Identity.load(tmp_path / "bad.safetensors")


def test_identity_from_other_weights_is_refused(model, base_model):
    ident = model.predict(ALICE).identity
    with pytest.raises(HyperLoRAError, match="only fits those weights"):
        base_model.expand(ident)


def test_base_lora_prediction_and_merge(base_model):
    pred = base_model.predict(ALICE)
    ident = pred.identity
    assert ident.has_base and pred.faces[0].base_image is not None
    only_id = base_model.expand(ident)
    merged = base_model.expand(ident, base_weight=0.4)
    base = base_model.tokens_to_lora(ident.base_tokens, "base")
    name = base_model.spec.lora_names[5]

    def delta(sd):
        d, u, a = sd[f"{name}.lora_down.weight"], sd[f"{name}.lora_up.weight"], sd[f"{name}.alpha"]
        return u.float() @ d.float() * float(a) / d.shape[0]

    assert merged[f"{name}.lora_down.weight"].shape[0] == 12
    torch.testing.assert_close(delta(merged), delta(only_id) + 0.4 * delta(base), atol=1e-5, rtol=1e-4)


def test_no_base_weights_means_clear_error(model):
    ident = model.predict(ALICE).identity
    with pytest.raises(HyperLoRAError, match="no Base-LoRA"):
        model.expand(ident, base_weight=0.4)
    with pytest.raises(HyperLoRAError, match="has no Base-LoRA"):
        model.predict(ALICE, base=True)


def test_save_lora_metadata_preview_and_no_overwrite(model, tmp_path):
    ident = model.predict(ALICE, name="alice").identity
    lora = model.expand(ident)
    meta = lora_metadata("alice", lora, {"variant": ident.variant, "identity_hash": ident.hash})
    path = save_lora(lora, tmp_path / "alice.safetensors", meta, preview=ident.preview())
    with safe_open(str(path), framework="pt") as f:
        m = f.metadata()
        assert m["ss_base_model_version"] == "sdxl_base_v1-0" and m["ss_network_dim"] == "8"
        assert m["ss_network_alpha"] == "4.0" and m["ss_network_module"] == "networks.lora"
        assert m["ss_output_name"] == "alice" and m["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
        assert m["hyperlora.identity_hash"] == ident.hash
        key = next(k for k in f.keys() if k.endswith("lora_up.weight"))
        assert f.get_tensor(key).dtype == torch.float16
        assert f.get_tensor(key.replace("lora_up.weight", "alpha")).shape == ()
    assert (tmp_path / "alice.preview.png").is_file()
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        save_lora(lora, path, meta)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    save_lora(lora, path, meta, overwrite=True)


def test_load_model_by_variant_name(locations):
    m = hyperlora_ext.load_model("tiny_id", device="cpu", dtype="fp32", models_dir=locations.root)
    assert m.spec.variant == "tiny_id"


# ---- #26 A1, A2, A6: every path gives the same identity ------------------------------------------
MANY = [face_image(feature=(170, 110, 90), seed=100 + s) for s in range(100)]


def test_more_photos_than_the_cache_holds(model):
    """#26 A1: one prediction from 100 photos, more than the per-photo cache keeps, then again."""
    model.clear_cache()
    names = [f"p{i}.png" for i in range(100)]
    pred = model.predict(MANY, names=names)
    assert not pred.skipped and [f.name for f in pred.faces] == names
    assert pred.identity.source_names == tuple(names) and len(pred.identity.crops) == 100
    again = model.predict(MANY, names=names)
    assert again.identity.hash == pred.identity.hash


def test_a_cached_photo_is_named_as_it_is_uploaded_now(model):
    """#26 A2: a photo seen before keeps its cached result, but the name of this upload."""
    model.clear_cache()
    model.predict([ALICE[0]], names=["first-upload.png"])
    pred = model.predict([ALICE[0], ALICE[1]], names=["renamed.png", "other.png"])
    assert pred.cache_hits == 1
    assert [f.name for f in pred.faces] == ["renamed.png", "other.png"]
    assert pred.identity.source_names == ("renamed.png", "other.png")


def test_a_photo_gives_the_same_identity_whatever_was_predicted_with_it(model):
    """#26 A6: per-photo tokens do not depend on the other photos of the request, on which were cached
    from earlier requests, or on the order of the photos."""
    model.clear_cache()
    together = model.predict(ALICE + [BOB])
    model.clear_cache()
    model.predict([ALICE[0]])
    model.predict([BOB])
    apart = model.predict(ALICE + [BOB])
    assert apart.cache_hits == 2 and apart.identity.hash == together.identity.hash
    model.clear_cache()
    assert model.predict([BOB, ALICE[1], ALICE[0]]).identity.hash == together.identity.hash


@settings(max_examples=12, deadline=None)
@given(order=st.permutations(range(4)))
def test_the_order_of_the_photos_never_changes_the_identity(model, order):
    """#26 A6, any order: the photos are pooled in a fixed (digest) order."""
    photos = ALICE + [BOB, face_image(feature=(200, 120, 100), seed=7)]
    reference = model.predict(photos).identity
    shuffled = model.predict([photos[i] for i in order], names=[f"p{i}.png" for i in order])
    assert shuffled.identity.hash == reference.hash and torch.equal(shuffled.identity.tokens, reference.tokens)
    assert list(shuffled.identity.source_names) == [f"p{i}.png" for i in order]
