"""Hover help of every HyperLoRA control (the WebUI's ``tooltip=``: hints.js sets it as the title).

One place for the wording, shared by the accordion (``ui``) and the card editor (``card_editor``).
No gradio here.
"""

from __future__ import annotations

INTRO_CREATE = ("**1** Drop photos of one person → **2** check the aligned faces (each photo's similarity to the "
                "others is shown under its face) → **3** name it → **Create**. Then use `<hyperlora:NAME:0.85>` "
                "in a prompt (type `<hyperlora:` for suggestions, Ctrl+Up/Down changes the weight).")
INTRO_USE = ("Pick an identity to insert its tag, save it as an ordinary LoRA file, mix identities or make a "
             "slider, rename or delete it. The same actions are on its card's edit button in the "
             "HyperLoRA tab of Extra Networks. Two or more people in one picture: pick one identity per face, "
             "from the left, and **Insert for ADetailer**.")



def tags_off_notice(reason: str) -> str:
    """The accordion's first line where no host adapter fits: why ``<hyperlora>`` tags do nothing here,
    and what still works (Markdown)."""
    return (f"**`<hyperlora>` tags are off on this WebUI**: {reason}. A generation with a tag gets a "
            "*HyperLoRA warnings* entry in its infotext. Creating identities works; use one through "
            "**Save as LoRA** and an ordinary `<lora:NAME:0.85>` tag.")


HELP: dict[str, str] = {
    "files": "One or more photos of the same person; several photos are averaged for a better likeness",
    "crops": "The aligned faces HyperLoRA used, each with its photo's similarity to the other photos",
    "name": "The identity's name: it becomes the prompt tag <hyperlora:NAME:weight>",
    "variant": "HyperLoRA checkpoint: 'fidelity' for likeness, 'edit' for more editable prompts",
    "create": "Predict the identity from the photos and store it (well under a second once the model is loaded)",
    "remove_bg": "Put the face on a flat grey background before encoding it (the official default)",
    "grayscale": "Encode the face in grayscale (less colour from the photos leaks into the LoRA)",
    "overwrite": "Replace a stored identity that has the same name",
    "drop_flagged": "Build the identity without the photos whose face looks like someone else (similarity < 0.3)",
    "identity": "The stored identity to use or manage",
    "refresh": "Read the identity list again (after changes in another tab or WebUI)",
    "faces": "The aligned faces of the selected identity",
    "weight": "Weight of the tag: 0.75-0.85 works best; negative values subtract (concept sliders)",
    "base": "Weight of the Base-LoRA (background, clothes) for checkpoints that have one; 0 = off",
    "insert": "Add <hyperlora:NAME:weight> to the prompt (replaces an earlier tag of the same identity)",
    "enabled": "Apply the selected identity at the weight above on every generation, without a tag in the prompt",
    "per_face": "One identity per face, in order: the first for the leftmost face, the second for the next...",
    "for_adetailer": "Write <hyperlora:NAME:weight> per face, joined by [SEP], into ADetailer's first prompt "
                     "(or show it to copy). Set ADetailer's 'Sort bounding boxes by' to 'Position (left to right)'",
    "lora_name": "File name in the Lora folder; empty = the identity's name",
    "lora_overwrite": "Replace a LoRA file of the same name",
    "save": "Write the identity as an ordinary SDXL LoRA file, usable as <lora:NAME:0.85> anywhere",
    "expression": "A mix such as 0.6*alice + 0.4*bob, or a slider such as smiling - neutral (spaces around -)",
    "mix_name": "Name of the new identity made from the expression",
    "mix_overwrite": "Replace a stored identity that has this name",
    "mix": "Store the mix or slider as a new identity (use a slider at +w / -w)",
    "new_name": "The identity's new name (prompts that use the old name must be updated)",
    "rename": "Rename the identity, its preview and its card",
    "confirm": "Tick to allow Delete (it cannot be undone)",
    "delete": "Delete the identity file and its preview (saved LoRA files are kept)",
}
