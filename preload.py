"""Command-line flags of sd-webui-hyperlora (the WebUI calls ``preload(parser)`` early)."""


def preload(parser):
    parser.add_argument("--hyperlora-models-dir", type=str, default=None,
                        help="folder holding hyper_lora/ and insightface/ for HyperLoRA "
                             "(default: the WebUI models folder)")
