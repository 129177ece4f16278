"""GeM pooling: hand-computed values, the switch on timm backbones, checkpoints and the recipe that applies it."""

from __future__ import annotations

import os

import pytest
import torch

from explorer.inference.folding import fold_batch_norms
from explorer.models import ViTExtractor
from explorer.models.pooling import (
    GeneralizedMeanPooling,
    pooling_of,
    pools_activations,
    set_pooling,
    state_pools_with_gem,
    use_gem_pooling,
)
from explorer.models.registry import create_backbone
from explorer.training.recipe import FineTuneRecipe, fine_tuning

os.environ["HF_HUB_OFFLINE"] = "1"


def test_gem_of_a_hand_computed_map():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    pooled = GeneralizedMeanPooling(p=3.0)(features)
    assert pooled.shape == (1, 1, 1, 1)
    assert pooled.item() == pytest.approx(((1 + 8 + 27 + 64) / 4) ** (1 / 3))  # 25^(1/3) = 2.924
    assert GeneralizedMeanPooling(p=1.0)(features).item() == pytest.approx(2.5)  # p = 1: the average
    large = GeneralizedMeanPooling(p=16.0)(features).item()  # towards the max: 4 x (1/4)^(1/16) = 3.67 and a bit
    assert large == pytest.approx(((1 + 2**16 + 3**16 + 4**16) / 4) ** (1 / 16), rel=1e-5) and 3.6 < large < 4


def test_gem_clamps_negative_and_zero_responses_instead_of_giving_nan():
    features = torch.tensor([[-1.0, 0.0], [0.0, 8.0]]).reshape(1, 1, 2, 2)
    pooled = GeneralizedMeanPooling(p=3.0)(features)
    assert torch.isfinite(pooled).all() and pooled.item() == pytest.approx((8**3 / 4) ** (1 / 3), rel=1e-4)


def test_the_switch_replaces_a_convnets_average_pooling_and_keeps_its_output_shape():
    backbone = create_backbone("test_efficientnet").eval()
    images = torch.rand(2, 3, 64, 64)
    before = backbone(images)
    assert pooling_of(backbone) is None
    assert use_gem_pooling(backbone)
    after = backbone(images)
    assert pooling_of(backbone) == "gem" and after.shape == before.shape
    assert not torch.allclose(after, before)  # p = 3 weighs strong responses: another descriptor
    assert "global_pool.pool.p" in backbone.state_dict()
    set_pooling(backbone, None)  # back to average: the very same features as before
    torch.testing.assert_close(backbone(images), before, rtol=0, atol=0)
    assert "global_pool.pool.p" not in backbone.state_dict()


def test_a_backbone_that_already_pools_with_gem_keeps_its_exponent():
    backbone = create_backbone("test_efficientnet")
    use_gem_pooling(backbone, p=2.0)
    assert use_gem_pooling(backbone)
    assert float(backbone.global_pool.pool.p) == 2.0


def test_a_vit_pools_tokens_and_is_left_alone():
    backbone = create_backbone("test_vit")
    modules_before = [type(module) for module in backbone.modules()]
    assert not use_gem_pooling(backbone) and pooling_of(backbone) is None
    assert [type(module) for module in backbone.modules()] == modules_before
    with pytest.raises(ValueError, match="no global average pooling"):
        set_pooling(backbone, "gem")


def test_a_checkpoint_records_gem_and_loads_with_the_same_features(tmp_path):
    extractor = ViTExtractor(None, arch="test_efficientnet").eval()
    use_gem_pooling(extractor.model, p=2.5)
    path = extractor.save(tmp_path / "gem.safetensors")
    loaded = ViTExtractor(path).eval()
    assert loaded.checkpoint_metadata.pooling == "gem" and float(loaded.model.global_pool.pool.p) == 2.5
    images = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(loaded(images), extractor(images), rtol=0, atol=0)
    plain = ViTExtractor(ViTExtractor(None, arch="test_efficientnet").save(tmp_path / "avg.safetensors"))
    assert plain.checkpoint_metadata.pooling is None and pooling_of(plain.model) is None


@pytest.mark.parametrize(
    ("fine_tune", "pooling", "expected"), [(True, "gem", "gem"), (True, "keep", None), (False, "gem", None)]
)
def test_fine_tuning_switches_to_gem_unless_asked_to_keep_and_leaves_it_after_the_run(fine_tune, pooling, expected):
    extractor = ViTExtractor(None, arch="test_efficientnet")
    with fine_tuning(extractor, FineTuneRecipe(fine_tune=fine_tune, pooling=pooling), total_steps=1):
        assert pooling_of(extractor.model) == expected
    assert pooling_of(extractor.model) == expected  # the trained weights were learned with it


def test_an_unknown_pooling_is_named_with_the_choices():
    with pytest.raises(ValueError, match="pooling must be one of gem, keep"):
        FineTuneRecipe(pooling="max")


def test_the_folded_inference_copy_of_a_gem_model_keeps_gem_and_its_features():
    extractor = ViTExtractor(None, arch="test_efficientnet").eval()
    use_gem_pooling(extractor.model)
    images = torch.rand(4, 3, 64, 64)
    folded = fold_batch_norms(extractor, images[:2])
    assert folded is not extractor and pooling_of(folded.model) == "gem"
    torch.testing.assert_close(folded(images), extractor(images), rtol=1e-4, atol=1e-5)


def test_signed_maps_keep_their_average_pooling_and_the_probe_leaves_every_mode_as_it_was():
    convnext = create_backbone("test_convnext")  # pools its signed maps before the head's LayerNorm
    convnext.train()
    convnext.stem.eval()
    modes = [module.training for module in convnext.modules()]
    assert not pools_activations(convnext) and not use_gem_pooling(convnext) and pooling_of(convnext) is None
    assert [module.training for module in convnext.modules()] == modes
    for arch in ("test_resnet", "test_efficientnet"):  # ReLU / SiLU maps: GeM's domain
        assert pools_activations(create_backbone(arch))


def test_saved_weights_say_whether_they_pool_with_gem():
    backbone = create_backbone("test_efficientnet")
    assert not state_pools_with_gem(backbone.state_dict())
    use_gem_pooling(backbone)
    assert state_pools_with_gem(backbone.state_dict())
    assert state_pools_with_gem({f"extractor.model.{key}": value for key, value in backbone.state_dict().items()})


def test_the_probe_leaves_the_global_random_state_alone():
    backbone = create_backbone("test_efficientnet")
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    pools_activations(backbone)
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)  # a seeded run draws the same numbers
