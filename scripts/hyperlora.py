"""sd-webui-hyperlora: the thin WebUI script. All logic lives in ``hyperlora_ext``.

An always-visible ``scripts.Script`` that shows the HyperLoRA accordion in txt2img and
img2img, (optionally) adds the selected identity's tag to the prompts, and records each final
image's likeness to the applied identities in its infotext. Activation of tags
happens in the ``hyperlora`` extra network, not here (hires and ADetailer passes skip hooks).
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # A1111 does not put extension roots on sys.path (Forge does)
    sys.path.insert(0, _ROOT)

from modules import scripts  # noqa: E402

from hyperlora_ext.app.generation import inner_passes  # noqa: E402
from hyperlora_ext.app.generation.activation import add_tag_to_prompts, script_tag  # noqa: E402
from hyperlora_ext.app.generation.likeness_infotext import annotate  # noqa: E402
from hyperlora_ext.app.generation.processing import Processing  # noqa: E402
from hyperlora_ext.webui.host import Extension  # noqa: E402

extension = Extension()
# ADetailer's first-tab prompt box (its aaaaaa/ui.py: elem_id("ad_prompt", n=0) = script_{tab}_adetailer_ad_prompt)
ADETAILER_PROMPTS = {"script_txt2img_adetailer_ad_prompt": "txt2img", "script_img2img_adetailer_ad_prompt": "img2img"}


class HyperLoRAScript(scripts.Script):
    prompt_boxes: dict = {}
    adetailer_box = None  # this tab's ADetailer prompt, when created before the accordion (the usual order)
    wire_adetailer = None  # from build_accordion: wires "Insert for ADetailer" to a box created after it

    def title(self):
        return "HyperLoRA"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def after_component(self, component, **kwargs):
        elem_id = kwargs.get("elem_id")
        if elem_id in ("txt2img_prompt", "img2img_prompt"):
            HyperLoRAScript.prompt_boxes[elem_id] = component
        elif elem_id in ADETAILER_PROMPTS:  # another extension's box: kept per Script instance (one per tab)
            if self.wire_adetailer is not None:
                self.wire_adetailer(component)
                self.wire_adetailer = None
            else:
                self.adetailer_box = component

    def ui(self, is_img2img):
        from hyperlora_ext.webui.ui import build_accordion

        tab = "img2img" if is_img2img else "txt2img"
        controls, self.wire_adetailer = build_accordion(extension.panel, tab, self.prompt_boxes.get(f"{tab}_prompt"),
                                                        self.adetailer_box, open_by_default=extension.open_accordion())
        return controls

    def process(self, p: Processing, *args):
        extension.generation_started(p)  # nothing of the last generation is re-applied in this one
        inner_passes.begin(p)  # passes other extensions run inside this generation are "inner" (ADetailer)
        try:
            tag = script_tag(args, extension.service.config.default_weight)
        except (ValueError, TypeError) as exc:
            p.comment(f"HyperLoRA: {exc}")
            return
        if tag:
            add_tag_to_prompts(p, tag)

    def postprocess_image_after_composite(self, p: Processing, pp, *args):
        """Each final image (after ADetailer's postprocess_image and the inpaint overlay, right
        before its infotext is built): record its likeness to the applied identities."""
        annotate(extension.service, p, pp.image)

    def postprocess(self, p: Processing, processed, *args):
        inner_passes.end(p)
