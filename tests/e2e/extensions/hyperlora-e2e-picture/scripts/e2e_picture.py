"""e2e only (``tests/e2e``), never part of the extension: an always-on script that, given the path of
a picture, puts that picture in place of the generated one before ADetailer looks for faces in it.

With random SDXL weights a txt2img draws no faces, so ADetailer would find nothing to repaint; this
lets the two-people test run ADetailer's face passes after a real txt2img (the outer generation,
its extra networks and its infotext are the host's own). Loaded by the e2e WebUIs only
(``webui_server.py`` installs it beside ADetailer); without the argument it does nothing.
"""

import gradio as gr
from modules import scripts
from PIL import Image


class E2EPicture(scripts.Script):
    def title(self):
        return "HyperLoRA e2e picture"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return [gr.Textbox(visible=False, elem_id=f"hyperlora_e2e_picture_{'img2img' if is_img2img else 'txt2img'}")]

    def postprocess_image(self, p, pp, path="", *args):
        if path:
            pp.image = Image.open(path).convert("RGB").resize(pp.image.size)
