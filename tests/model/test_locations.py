"""Where the model files live (``model.locations``)."""

import pytest

from hyperlora_ext import MissingModelsError, ModelLocations


def test_locations_and_missing_files(tmp_path, locations):
    assert locations.variants() == ["tiny_base", "tiny_id"]
    empty = ModelLocations.under(tmp_path)
    with pytest.raises(MissingModelsError) as err:
        empty.check("sdxl_hyper_id_lora_v1_fidelity")
    assert len(err.value.missing) == 4 + 3 + 3
    with pytest.raises(ValueError):
        empty.variant_dir("../../etc")
