"""Identity algebra (mix, slider) against a direct computation, expression parsing, identity files."""

from pathlib import Path

import pytest
import torch
from builders import make_checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import lora_from_tokens
from safetensors import safe_open

import hyperlora_ext
from hyperlora_ext import HyperLoRAError, Identity
from hyperlora_ext.cli import main
from hyperlora_ext.identities.algebra import (
    MixExpression,
    combine,
    mix_identities,
    parse_mix,
    slider_identity,
)
from hyperlora_ext.identities.identity import pool_tokens

DATA = Path(__file__).resolve().parents[1] / "data"
OLD_FILE = DATA / "identity_v1_before_embedding.safetensors"  # written by the code before embeddings
OLD_HASH = "b7b32fc79c4f"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = make_checkpoint(tmp_path_factory.mktemp("alg") / "ck", spelling="compvis", dtype=torch.float32,
                             base=True, dim_head=16, seed=11)
    model = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    return folder, model


def person(model, seed, name, embedding=True):
    g = torch.Generator().manual_seed(seed)
    q = 8 * len(model.spec.modules)
    e = torch.randn(3, 512, generator=g)
    e = e / e.norm(dim=1, keepdim=True)
    return Identity(tokens=pool_tokens(torch.randn(2, q, model.spec.hyper_dim, generator=g)),
                    base_tokens=pool_tokens(torch.randn(2, q, model.spec.hyper_dim, generator=g)),
                    variant=model.spec.variant, model_fingerprint=model.spec.fingerprint, name=name,
                    source_names=(f"{name}.png",), source_digests=(f"d{seed}",),
                    embedding=e.mean(0) if embedding else None)


def unit_rows(x):
    return x / x.norm(dim=-1, keepdim=True)


def delta(sd, name):
    d, u, a = sd[f"{name}.lora_down.weight"], sd[f"{name}.lora_up.weight"], sd[f"{name}.alpha"]
    return u.double() @ d.double() * float(a) / d.shape[0]


def test_mix_tokens_embedding_and_lora_match_direct_computation(setup):
    folder, model = setup
    alice, bob = person(model, 1, "alice"), person(model, 2, "bob")
    mixed = combine("0.6*alice + 0.4*bob", {"alice": alice, "bob": bob}, name="ab")
    torch.testing.assert_close(mixed.tokens, unit_rows(0.6 * alice.tokens + 0.4 * bob.tokens))
    torch.testing.assert_close(mixed.base_tokens, unit_rows(0.6 * alice.base_tokens + 0.4 * bob.base_tokens))
    ea, eb = alice.embedding / alice.embedding.norm(), bob.embedding / bob.embedding.norm()
    torch.testing.assert_close(mixed.embedding, unit_rows(0.6 * ea + 0.4 * eb))
    assert [(p.name, p.hash, p.factor) for p in mixed.parents] == [("alice", alice.hash, 0.6), ("bob", bob.hash, 0.4)]
    assert mixed.name == "ab" and not mixed.is_slider and mixed.source_digests == ("d1", "d2")
    ref = lora_from_tokens(folder, unit_rows(0.6 * alice.tokens + 0.4 * bob.tokens))
    lora = model.expand(mixed)
    assert set(lora) == set(ref)
    for k in ref:
        torch.testing.assert_close(lora[k].float(), ref[k], atol=1e-5, rtol=1e-4)


def test_mix_is_scale_free_and_equal_factors_pool_like_photos(setup):
    _, model = setup
    a, b, c = (person(model, s, n) for s, n in ((1, "a"), (2, "b"), (3, "c")))
    even = mix_identities([(a, 1.0), (b, 1.0), (c, 1.0)])
    torch.testing.assert_close(even.tokens, pool_tokens(torch.stack([a.tokens, b.tokens, c.tokens])))
    torch.testing.assert_close(mix_identities([(a, 3.0), (b, 2.0)]).tokens, mix_identities([(a, 0.6), (b, 0.4)]).tokens)
    assert mix_identities([(a, 0.9), (b, 0.1)]).hash != mix_identities([(a, 0.1), (b, 0.9)]).hash


def test_mix_without_base_or_embedding_drops_them(setup):
    _, model = setup
    a, b = person(model, 1, "a"), person(model, 2, "b", embedding=False)
    b.base_tokens = None
    m = mix_identities([(a, 0.5), (b, 0.5)])
    assert m.base_tokens is None and m.embedding is None and m.options["base"] is False


def test_slider_lora_is_exact_difference_of_the_two_loras(setup):
    folder, model = setup
    smiling, neutral = person(model, 5, "smiling"), person(model, 6, "neutral")
    slider = combine("smiling - neutral", {"smiling": smiling, "neutral": neutral}, name="smile")
    assert slider.is_slider and slider.embedding is None
    assert [(p.name, p.factor) for p in slider.parents] == [("smiling", 1.0), ("neutral", -1.0)]
    lora = model.expand(slider)
    ref_a, ref_b = lora_from_tokens(folder, smiling.tokens), lora_from_tokens(folder, neutral.tokens)
    names = model.spec.lora_names
    assert set(lora) == set(ref_a)
    for name in names:
        assert lora[f"{name}.lora_down.weight"].shape[0] == 2 * model.spec.rank
        torch.testing.assert_close(delta(lora, name), delta(ref_a, name) - delta(ref_b, name), atol=1e-7, rtol=1e-5)
    # the LoRA is bilinear in the coefficients: the "LoRA of the difference" is something else
    naive = lora_from_tokens(folder, smiling.tokens - neutral.tokens)
    assert not torch.allclose(delta(naive, names[0]), delta(lora, names[0]), atol=1e-4)
    # Base-LoRA baked into each side: ID(A) + b Base(A) - ID(B) - b Base(B)
    with_base = model.expand(slider, base_weight=0.5)
    base_a = lora_from_tokens(folder, smiling.base_tokens, "base")
    base_b = lora_from_tokens(folder, neutral.base_tokens, "base")
    for name in names[:6]:
        want = delta(ref_a, name) + 0.5 * delta(base_a, name) - delta(ref_b, name) - 0.5 * delta(base_b, name)
        torch.testing.assert_close(delta(with_base, name), want, atol=1e-7, rtol=1e-5)


def test_mix_and_slider_files_round_trip(setup, tmp_path):
    _, model = setup
    a, b = person(model, 1, "a"), person(model, 2, "b")
    for made, version in ((mix_identities([(a, 0.7), (b, 0.3)], name="m"), "1"),
                          (slider_identity(a, b, name="s"), "2")):
        path = made.save(tmp_path / f"{made.name}.safetensors")
        with safe_open(str(path), framework="pt") as f:
            assert f.metadata()["format_version"] == version
        back = Identity.load(path)
        assert back.hash == made.hash and back.parents == made.parents and back.is_slider == made.is_slider
        for field in ("tokens", "base_tokens", "embedding", "negative_tokens", "negative_base_tokens"):
            x, y = getattr(made, field), getattr(back, field)
            assert (x is None and y is None) or torch.equal(x, y), field
        one, two = model.expand(made), model.expand(back)
        assert all(torch.equal(one[k], two[k]) for k in one)
    assert slider_identity(a, b).hash != a.hash  # the negative half is part of the hash


def test_old_identity_file_loads_and_keeps_its_hash(tmp_path):
    old = Identity.load(OLD_FILE)
    assert old.hash == OLD_HASH and old.embedding is None and old.unit_embedding() is None
    assert not old.is_slider and old.parents == () and old.has_base and len(old.crops) == 1
    again = Identity.load(old.save(tmp_path / "again.safetensors"))
    assert again.hash == OLD_HASH
    old.embedding = torch.ones(512)  # the embedding does not change the LoRA, so not the hash either
    assert old.hash == OLD_HASH


def test_errors_are_clear(setup, locations):
    _, model = setup
    a, b = person(model, 1, "a"), person(model, 2, "b")
    other = Identity(tokens=a.tokens, variant="other", model_fingerprint="f" * 16, name="stranger")
    with pytest.raises(HyperLoRAError, match="different HyperLoRA weights"):
        combine("a + stranger", {"a": a, "stranger": other})
    with pytest.raises(HyperLoRAError, match="is a slider"):
        mix_identities([(slider_identity(a, b, name="s"), 0.5), (a, 0.5)])
    with pytest.raises(HyperLoRAError, match="unknown identity 'carol'.*known: a, b"):
        combine("a + carol", {"a": a, "b": b})
    tiny = hyperlora_ext.load_model(locations.variant_dir("tiny_id"), device="cpu", dtype="fp32")
    with pytest.raises(HyperLoRAError, match="only fits those weights"):
        tiny.expand(slider_identity(a, b))


@pytest.mark.parametrize("text, kind, terms", [
    ("0.6*alice + 0.4*bob", "mix", (("alice", 0.6), ("bob", 0.4))),
    ("alice+bob", "mix", (("alice", 1.0), ("bob", 1.0))),
    (" 2 * my-face.safetensors + .5*dir/bob one.safetensors ", "mix",
     (("my-face.safetensors", 2.0), ("dir/bob one.safetensors", 0.5))),
    ("1e-1*a + 3.*b", "mix", (("a", 0.1), ("b", 3.0))),
    ("smiling - neutral", "slider", (("smiling", 1.0), ("neutral", -1.0))),
    ("old-man - young-man", "slider", (("old-man", 1.0), ("young-man", -1.0))),
])
def test_parse_mix(text, kind, terms):
    expr = parse_mix(text)
    assert expr == MixExpression(kind, terms)
    assert parse_mix(str(expr)) == expr


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("alice", "two or more"), ("alice-bob", "two or more"), ("0.6*alice + ", "no identity name"),
    ("-0.5*alice + bob", "not a positive number"), ("0*alice + bob", "positive finite"),
    ("nan*a + b", "not a positive number"), ("1e999*a + b", "positive finite"), ("a**b + c", "more than one"),
    ("a + a", "more than once"), ("a - b - c", "exactly 'A - B'"), ("a + b - c", "exactly 'A - B'"),
    ("2*a - b", "no factors"), ("x*a + b", "not a positive number"), ("a -+b", "ambiguous"),
])
def test_parse_mix_rejects(text, message):
    with pytest.raises(HyperLoRAError, match=message):
        parse_mix(text)


def _parses_or_explains(text):
    try:
        expr = parse_mix(text)
    except HyperLoRAError as exc:
        assert str(exc)
        return
    assert expr.kind in ("mix", "slider") and all(n and f != 0 for n, f in expr.terms)
    assert parse_mix(str(expr)).kind == expr.kind


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_mix_any_text_gives_result_or_message(text):
    _parses_or_explains(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab.-+*eE0123456789 \t", max_size=30))
def test_parse_mix_expression_like_text_gives_result_or_message(text):
    _parses_or_explains(text)


def test_cli_mix_and_slider(setup, locations, tmp_path, capsys):
    tiny = hyperlora_ext.load_model(locations.variant_dir("tiny_id"), device="cpu", dtype="fp32")
    a, b = person(tiny, 1, "alice"), person(tiny, 2, "bob")
    pa, pb = a.save(tmp_path / "alice.safetensors"), b.save(tmp_path / "bob.safetensors")
    out = tmp_path / "ab.safetensors"
    assert main(["mix", f"0.6*{pa} + 0.4*{pb}", "-o", str(out)]) == 0
    assert "mix of 0.6*alice" in capsys.readouterr().out
    torch.testing.assert_close(Identity.load(out).tokens, mix_identities([(a, 0.6), (b, 0.4)]).tokens)
    assert main(["mix", f"0.6*{pa} + 0.4*{pb}", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    lora_path = tmp_path / "slider.lora.safetensors"
    assert main(["mix", f"{pa} - {pb}", "-o", str(tmp_path / "s.safetensors"), "--lora", str(lora_path),
                 "--models-dir", str(locations.root)]) == 0
    with safe_open(str(lora_path), framework="pt") as f:
        assert f.metadata()["hyperlora.expression"] == f"{pa} - {pb}" and f.metadata()["ss_network_dim"] == "16"
    assert main(["mix", f"{pa} + {tmp_path / 'nobody.safetensors'}", "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "cannot read identity file" in capsys.readouterr().err
