"""The public API of ``import hyperlora_ext as hl`` (docs/cli-python.md): every name 0.1.0 exported
stays exported from the package root, whatever sub-package now holds it."""

import inspect

import hyperlora_ext as hl

EXPORTED_IN_0_1_0 = {
    "CheckpointError", "CheckpointSpec", "DEFAULT_VARIANT", "DownloadError", "HyperLoRAError", "HyperLoRAModel",
    "Identity", "ImageError", "MissingModelsError", "ModelLocations", "NoFaceError", "Prediction", "VARIANTS",
    "download_models", "inspect_checkpoint", "load_image", "load_model", "lora_metadata", "merge_loras",
    "save_lora",
}


def test_every_name_of_0_1_0_is_still_exported():
    assert EXPORTED_IN_0_1_0 <= set(hl.__all__)
    missing = [name for name in hl.__all__ if not hasattr(hl, name)]
    assert not missing, missing


def test_load_model_keeps_its_signature():
    params = inspect.signature(hl.load_model).parameters
    assert list(params) == ["path", "device", "dtype", "offload", "models_dir", "providers", "det_size"]
    assert [params[n].default for n in ("device", "dtype", "offload")] == ["auto", "auto", "auto"]
