"""The tag syntax (``app.tags``): parsing, formatting, finding and editing tags in prompt text,
trigger words, the infotext entry and ADetailer's per-face prompt."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyperlora_ext.app.core.tags import (
    FACE_SEPARATOR,
    Applied,
    TagRequest,
    find_tags,
    format_infotext,
    format_number,
    format_tag,
    has_tag_for,
    has_trigger_words,
    parse_infotext,
    parse_tag,
    put_tag,
    put_tags_per_face,
    rename_in_prompt,
    replace_tags,
    with_trigger_words,
)
from hyperlora_ext.files import safe_name

HOST_TAG = re.compile(r"<(\w+):([^>]+)>")  # A1111 / Forge modules/extra_networks.py re_extra_net
NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).map(
    lambda t: t.replace(":", "").replace(">", "").replace("<", "")).filter(lambda t: t.strip()).map(
    lambda t: safe_name(t) if _usable(t) else "x")
WEIGHTS = st.decimals(min_value=-10, max_value=10, places=2, allow_nan=False).map(float)


def _usable(text: str) -> bool:
    try:
        safe_name(text)
    except ValueError:
        return False
    return True


def host_items(prompt: str) -> list[list[str]]:
    """What the host's parser hands the extra network for ``hyperlora`` tags: the items of each."""
    return [m.group(2).split(":") for m in HOST_TAG.finditer(prompt) if m.group(1) == "hyperlora"]


def test_parse_tag_forms():
    assert parse_tag(["alice"], {}, 0.85) == TagRequest("alice", 0.85, 0.0)
    assert parse_tag(["alice", "0.7"]) == TagRequest("alice", 0.7, 0.0)
    assert parse_tag(["alice", "0.7", "0.4"]) == TagRequest("alice", 0.7, 0.4)
    assert parse_tag(["alice", "0.7"], {"base": "0.3"}) == TagRequest("alice", 0.7, 0.3)
    assert parse_tag([" alice smith "]).name == "alice smith"


@pytest.mark.parametrize("positional,named,fragment", [
    ([], {}, "give an identity name"),
    (["alice", "heavy"], {}, "weight 'heavy' is not a number"),
    (["alice", "1", "x"], {}, "base weight 'x'"),
    (["alice", "1", "0", "9"], {}, "too many values"),
    (["alice", "nan"], {}, "out of range"),
    (["alice", "1"], {"dyn": "4"}, "unknown option"),
])
def test_parse_tag_errors_quote_the_tag(positional, named, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        parse_tag(positional, named)
    assert str(err.value).startswith("<hyperlora")


def test_format_tag_and_trigger_words():
    assert format_tag("alice", 0.85) == "<hyperlora:alice:0.85>"
    assert format_tag("alice", 1.0, 0.4) == "<hyperlora:alice:1:0.4>"
    assert with_trigger_words("photo of alice") == "fcsks fxhks fhyks, photo of alice"
    assert with_trigger_words("") == "fcsks fxhks fhyks"
    kept = "a FCSKS fxhks fhyks portrait"
    assert with_trigger_words(kept) == kept and has_trigger_words(kept)
    assert not has_trigger_words("fcsksx fxhks fhyks")  # whole words only


def test_infotext_round_trip():
    applied = [Applied("alice", "3f2a9c1b2d4e", 0.85, 0.0, "fidelity"),
               Applied("bob x", "aabbccddeeff", 1, 0.4, "edit")]
    text = format_infotext(applied)
    assert text == "alice (3f2a9c1b2d4e): 0.85, fidelity; bob x (aabbccddeeff): 1, base 0.4, edit"
    assert parse_infotext(text) == applied
    assert parse_infotext('"' + text + '"') == applied
    assert parse_infotext("garbage") == []


def test_put_tag():
    assert put_tag("", "alice", 0.85) == "<hyperlora:alice:0.85>"
    assert put_tag("photo", "alice", 0.85) == "photo <hyperlora:alice:0.85>"
    assert put_tag("a <hyperlora:Alice:0.5> b", "alice", 1, 0.4) == "a <hyperlora:alice:1:0.4> b"
    assert put_tag("<hyperlora:bob:1>", "alice", 1) == "<hyperlora:bob:1> <hyperlora:alice:1>"


@given(NAMES, WEIGHTS, WEIGHTS)
def test_parse_of_format_is_the_identity(name, weight, base):
    """format -> the host's own split -> parse gives back the request (weights with 4 digits)."""
    [items] = host_items(format_tag(name, weight, base))
    positional = [i for i in items if "=" not in i]
    assert parse_tag(positional, {}) == TagRequest(name, float(format_number(weight)), float(format_number(base)))


@given(st.lists(st.sampled_from(["alice", "Alice", " alice ", "bob", "alicex"]), max_size=4),
       st.lists(st.text(st.sampled_from("ab :,<>()\n"), max_size=8), min_size=5, max_size=5), NAMES)
def test_rename_keeps_every_other_character(names, gaps, new):
    prompt = gaps[0] + "".join(f"<hyperlora:{n}:0.5>" + g for n, g in zip(names, gaps[1:]))
    out = rename_in_prompt(prompt, "alice", new)
    before, after = host_items(prompt), host_items(out)  # the tags as the host reads them
    assert len(before) == len(after)
    for b, a in zip(before, after):
        assert a == ([new, *b[1:]] if b[0].strip().lower() == "alice" else b) or (
            b[0].strip().lower() == "alice" and a[0].strip() == new and a[1:] == b[1:])
    assert HOST_TAG.sub("<>", out) == HOST_TAG.sub("<>", prompt)  # not one character outside them moved


def test_find_replace_and_the_case_rule():
    prompt = "a <hyperlora:Alice:0.5:base=0.2> b <HyperLoRA:alice:1> <lora:alice:1> <hyperlora:bob>"
    tags = find_tags(prompt)
    assert [(t.name, t.positional, t.named) for t in tags] == [
        ("Alice", ("Alice", "0.5"), ("base=0.2",)), ("bob", ("bob",), ())]  # the keyword exactly, as the hosts
    assert has_tag_for(prompt, "ALICE") and has_tag_for(prompt, "bob") and not has_tag_for(prompt, "carol")
    out, seen = replace_tags(prompt, lambda t: "<x>" if t.is_for("alice") else None)
    assert seen == 2 and out == "a <x> b <HyperLoRA:alice:1> <lora:alice:1> <hyperlora:bob>"
    assert replace_tags(prompt, lambda t: "<y>", first_only=True) == (
        "a <y> b <HyperLoRA:alice:1> <lora:alice:1> <hyperlora:bob>", 1)
    assert rename_in_prompt("<hyperlora: Alice :0.5>", "alice", "carol") == "<hyperlora: carol :0.5>"
    assert find_tags("<hyperlora:>") == []  # the hosts need at least one character


def test_put_tags_per_face():
    assert put_tags_per_face("", ["alice", "bob"], 0.85, text="photo of a face") == \
        "<hyperlora:alice:0.85> photo of a face [SEP] <hyperlora:bob:0.85> photo of a face"
    assert put_tags_per_face("", ["alice", "bob"], 0.85) == "<hyperlora:alice:0.85> [SEP] <hyperlora:bob:0.85>"
    # the user's text of each part stays; that part's old tags go; parts beyond the names are dropped
    current = "photo of a woman [SEP]<hyperlora:carol:1>, photo of a man  [SEP] a third"
    assert put_tags_per_face(current, ["alice", "bob"], 0.7, 0.2, "x") == \
        "<hyperlora:alice:0.7:0.2> photo of a woman [SEP] <hyperlora:bob:0.7:0.2> photo of a man"
    # more names than parts: the new parts get the text; an empty part too
    assert put_tags_per_face("[SEP] smiling", ["a", "b", "c"], 1, text="face") == \
        "<hyperlora:a:1> face [SEP] <hyperlora:b:1> smiling [SEP] <hyperlora:c:1> face"
    assert put_tags_per_face("anything", [], 1) == ""


@given(st.lists(st.sampled_from(["alice", "bob", "carol"]), min_size=1, max_size=4), WEIGHTS)
def test_put_tags_per_face_is_idempotent_and_split_like_adetailer(names, weight):
    once = put_tags_per_face("", names, weight, text="photo of a face")
    assert put_tags_per_face(once, names, weight, text="photo of a face") == once
    parts = re.split(r"\s*\[SEP\]\s*", once)  # ADetailer's _get_prompt split
    assert FACE_SEPARATOR.strip() == "[SEP]" and len(parts) == len(names)
    for part, name in zip(parts, names):
        (tag,) = find_tags(part)
        assert tag.name == name
        assert parse_tag(list(tag.positional)).weight == pytest.approx(float(format_number(weight)))
