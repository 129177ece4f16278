"""Extractors, presets, offline behaviour, checkpoints and transforms."""

from __future__ import annotations

import os
import socket

import huggingface_hub
import numpy as np
import pytest
import timm
import timm.data
import torch
from huggingface_hub import constants as hf_constants
from PIL import Image
from safetensors.torch import save_file
from sklearn.datasets import load_sample_image

from explorer.errors import InputError
from explorer.models import (
    OFFLINE_PRESET,
    CheckpointError,
    ModelSpec,
    PretrainedWeightsUnavailable,
    ViTExtractor,
    get_transforms_for_pretrained,
    parse_model_spec,
    read_checkpoint_metadata,
)
from explorer.models import checkpoint as checkpoint_module
from explorer.models.hub import load_hub_backbone
from explorer.models.lite0 import load_lite0_classifier
from explorer.models.transforms import ImageConfig, eval_transform, train_transform
from explorer.workspace.extractors import ModelChoice, load_extractor

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never wait on the Hugging Face hub

TINY_VIT_WEIGHTS = "test_vit.r160_in1k"


@pytest.fixture(scope="module")
def lite0_extractor():
    return ViTExtractor(OFFLINE_PRESET).eval()


def test_random_extractor_embeds_any_size_with_feat_dim_columns():
    extractor = ViTExtractor(None, arch="test_vit").eval()
    with torch.no_grad():
        embeddings = extractor(torch.randn(3, 3, 64, 64))
    assert embeddings.shape == (3, extractor.feat_dim) and extractor.feat_dim == 64


def test_normalise_features_gives_unit_norm_embeddings():
    extractor = ViTExtractor(None, arch="test_efficientnet", normalise_features=True).eval()
    with torch.no_grad():
        norms = extractor(torch.randn(4, 3, 64, 64)).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(4))


def test_oml_arch_alias_resolves_to_timm_architecture():
    assert ViTExtractor(None, arch="vits16").arch == "vit_small_patch16_224"


def test_unknown_weights_and_arch_have_clear_messages():
    with pytest.raises(ValueError, match="Unknown weights 'no_such_preset'.*efficientnet_lite0_imagenet"):
        ViTExtractor("no_such_preset")
    with pytest.raises(ValueError, match="Unknown architecture 'vitz99'"):
        ViTExtractor(None, arch="vitz99")
    with pytest.raises(ValueError, match="needs `arch`"):
        ViTExtractor(None)


def test_model_spec_decides_each_kind_once(tmp_path):
    preset = parse_model_spec(OFFLINE_PRESET)
    assert (preset.kind, preset.timm_arch, preset.config_name, preset.preset) == (
        "preset",
        "tf_efficientnet_lite0",
        "tf_efficientnet_lite0.in1k",
        OFFLINE_PRESET,
    )
    timm_weights = parse_model_spec(TINY_VIT_WEIGHTS)
    assert (timm_weights.kind, timm_weights.timm_arch, timm_weights.config_name, timm_weights.preset) == (
        "timm_pretrained",
        "test_vit",
        TINY_VIT_WEIGHTS,
        None,
    )
    assert parse_model_spec(None, arch="vits16") == ModelSpec(
        "random", "vit_small_patch16_224", "vit_small_patch16_224"
    )
    assert parse_model_spec(None, arch="vits16_dino").timm_arch == "vit_small_patch16_224"  # a preset's arch
    path = ViTExtractor(None, arch="test_vit").save(tmp_path / "model.safetensors")
    checkpoint = parse_model_spec(path)
    assert (checkpoint.kind, checkpoint.timm_arch, checkpoint.checkpoint) == ("checkpoint", "test_vit", path)
    assert checkpoint.checkpoint_metadata.feat_dim == 64


def test_model_spec_refuses_what_is_not_weights_with_the_fix():
    with pytest.raises(InputError, match="Unknown weights 'no_such_preset'.*a checkpoint path ending in .safetensors"):
        parse_model_spec("no_such_preset")
    with pytest.raises(InputError, match="'resnet18' is an architecture: .*'resnet18.a1_in1k'.*--arch resnet18"):
        parse_model_spec("resnet18")
    with pytest.raises(InputError, match="no pretrained weights 'test_vit.no_such_tag'.*'test_vit.r160_in1k'"):
        parse_model_spec("test_vit.no_such_tag")  # timm itself raises RuntimeError for an unknown tag
    with pytest.raises(InputError, match=f"arch='resnet18' does not match timm weights '{TINY_VIT_WEIGHTS}'"):
        parse_model_spec(TINY_VIT_WEIGHTS, arch="resnet18")
    assert issubclass(PretrainedWeightsUnavailable, InputError) and issubclass(CheckpointError, InputError)


def test_transforms_of_a_bare_architecture_use_its_default_config():
    transform, _ = get_transforms_for_pretrained("test_vit")
    assert transform(Image.new("RGB", (300, 200))).shape == (3, 160, 160)


def test_arch_must_agree_with_preset():
    with pytest.raises(ValueError, match="does not match preset 'efficientnet_lite0_imagenet'"):
        ViTExtractor(OFFLINE_PRESET, arch="vits16")


def test_lite0_weights_predict_imagenet_classes_of_real_photos():
    classifier = load_lite0_classifier()
    config = timm.data.resolve_data_config({}, model=classifier)
    transform = timm.data.create_transform(**config)
    assert config["mean"] == config["std"] == (0.5, 0.5, 0.5)
    names = timm.data.ImageNetInfo()
    photos = torch.stack([transform(Image.fromarray(load_sample_image(n))) for n in ("china.jpg", "flower.jpg")])
    with torch.no_grad():
        top5 = classifier(photos).topk(5).indices
    china_top5 = {names.index_to_description(int(i)) for i in top5[0]}
    assert names.index_to_description(int(top5[0, 0])) == "palace"
    assert china_top5 & {"monastery", "bell cote, bell cot"}
    assert names.index_to_description(int(top5[1, 0])) == "daisy"


def test_offline_preset_extractor_gives_the_classifier_pooled_features(lite0_extractor):
    classifier = load_lite0_classifier()
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = classifier.forward_head(classifier.forward_features(images), pre_logits=True)
        torch.testing.assert_close(lite0_extractor(images), expected)
    assert lite0_extractor.feat_dim == 1280
    assert lite0_extractor.image_config.mean == (0.5, 0.5, 0.5)


def test_hub_preset_offline_raises_one_actionable_message():
    with pytest.raises(PretrainedWeightsUnavailable) as raised:
        ViTExtractor("vits16_dino", arch="vits16", normalise_features=False)
    message = str(raised.value)
    for part in (
        "'vits16_dino'",
        "vit_small_patch16_224.dino",
        "HF_HUB_OFFLINE",
        "HF cache",
        OFFLINE_PRESET,
        "from_pretrained_file",
    ):
        assert part in message


def test_hub_preset_without_network_does_not_try_to_download(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    def forbidden_download(*args, **kwargs):
        raise AssertionError("a download was attempted although the hub is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", forbidden_download)
    with pytest.raises(PretrainedWeightsUnavailable, match="'vits16_dino'.*cannot be reached.*offline"):
        ViTExtractor("vits16_dino", arch="vits16")


def _timm_weight_file(tmp_path, name: str = "model.safetensors"):
    """A timm-format weight file of the tiny ViT (random values) and the model it came from."""
    source = timm.create_model("test_vit", pretrained=False)
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    return path, source


def _hf_cache_holding(tmp_path, tensors: dict[str, torch.Tensor]) -> str:
    """A local HF cache folder whose timm/test_vit.r160_in1k snapshot holds `tensors` as model.safetensors."""
    snapshot = tmp_path / "hub" / "models--timm--test_vit.r160_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(snapshot / "model.safetensors"))
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    return str(tmp_path / "hub")


def test_hub_weights_are_loaded_from_the_local_hf_cache_without_network(tmp_path):
    source = timm.create_model("test_vit", pretrained=False)
    cache_dir = _hf_cache_holding(tmp_path, source.state_dict())
    backbone = load_hub_backbone("tiny", TINY_VIT_WEIGHTS, cache_dir=cache_dir)
    torch.testing.assert_close(backbone.patch_embed.proj.weight, source.patch_embed.proj.weight)


def test_from_pretrained_file_loads_a_local_timm_weight_file(tmp_path):
    weights, source = _timm_weight_file(tmp_path)
    extractor = ViTExtractor.from_pretrained_file(TINY_VIT_WEIGHTS, weights)
    torch.testing.assert_close(extractor.model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    assert extractor.image_config.input_size == 160


def test_from_pretrained_file_reads_a_torch_state_dict_too(tmp_path):
    source = timm.create_model("test_vit", pretrained=False)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "weights.pth")
    extractor = ViTExtractor.from_pretrained_file(TINY_VIT_WEIGHTS, tmp_path / "weights.pth")
    torch.testing.assert_close(extractor.model.blocks[-1].mlp.fc2.weight, source.blocks[-1].mlp.fc2.weight)


def test_partial_weight_file_is_refused_naming_the_missing_keys(tmp_path):
    source = timm.create_model("test_vit", pretrained=False)
    partial = {k: v for k, v in source.state_dict().items() if not k.startswith("blocks.1.")}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(CheckpointError, match=r"12 missing key\(s\) \(blocks\.1\.norm1\.weight, .*, \.\.\.\)"):
        ViTExtractor.from_pretrained_file(TINY_VIT_WEIGHTS, tmp_path / "partial.safetensors")


def test_weight_file_with_foreign_keys_is_refused_naming_them(tmp_path):
    source = timm.create_model("test_vit", pretrained=False)
    save_file({**source.state_dict(), "decoder.weight": torch.zeros(3)}, str(tmp_path / "extra.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 unexpected key\(s\) \(decoder\.weight\)"):
        ViTExtractor.from_pretrained_file(TINY_VIT_WEIGHTS, tmp_path / "extra.safetensors")
    (tmp_path / "junk.bin").write_bytes(b"not a weight file")
    with pytest.raises(CheckpointError, match="Cannot read weights from .*junk.bin"):
        ViTExtractor.from_pretrained_file(TINY_VIT_WEIGHTS, tmp_path / "junk.bin")


def test_partial_weights_in_the_hf_cache_are_refused(tmp_path):
    source = timm.create_model("test_vit", pretrained=False)
    partial = {k: v for k, v in source.state_dict().items() if k != "pos_embed"}
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\) \(pos_embed\)"):
        load_hub_backbone("tiny", TINY_VIT_WEIGHTS, cache_dir=_hf_cache_holding(tmp_path, partial))


def test_checkpoint_metadata_keeps_numbers_and_writes_other_objects_as_text(tmp_path):
    training = {"data": tmp_path / "df.csv", "steps": np.int64(3), "lr": np.float32(0.5), "loss": torch.tensor(2.0)}
    path = ViTExtractor(None, arch="test_vit").save(tmp_path / "model.safetensors", training=training)
    restored = read_checkpoint_metadata(path).training
    assert restored == {"data": str(tmp_path / "df.csv"), "steps": 3, "lr": 0.5, "loss": 2.0}
    assert isinstance(restored["steps"], int) and isinstance(restored["lr"], float)


def test_checkpoint_round_trip_restores_weights_normalisation_and_transforms(tmp_path):
    extractor = ViTExtractor(None, arch="test_vit", normalise_features=True).eval()
    extractor.set_input_size(64)
    path = extractor.save(tmp_path / "model.safetensors", training={"epochs": 2}, metrics={"OVERALL/cmc/1": 0.5})
    loaded = ViTExtractor(path).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), extractor(images))
    assert loaded.normalise_features and loaded.arch == "test_vit" and loaded.image_config == extractor.image_config
    metadata = read_checkpoint_metadata(path)
    assert metadata.training == {"epochs": 2} and metadata.metrics == {"OVERALL/cmc/1": 0.5}
    assert metadata.feat_dim == 64
    transform, reader = get_transforms_for_pretrained(path)
    assert transform(Image.new("RGB", (100, 80))).shape == (3, 64, 64)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    extractor = ViTExtractor(None, arch="test_vit")
    path = extractor.save(tmp_path / "model.safetensors")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        extractor.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_foreign_files_are_refused_with_clear_messages(tmp_path):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        ViTExtractor(tmp_path / "model.pth")
    plain, _ = _timm_weight_file(tmp_path, "plain.safetensors")
    with pytest.raises(CheckpointError, match="not a metric-learning-explorer checkpoint.*from_pretrained_file"):
        ViTExtractor(plain)
    with pytest.raises(CheckpointError, match="not found"):
        ViTExtractor(tmp_path / "missing.safetensors")


def test_checkpoint_arch_mismatch_is_refused(tmp_path):
    path = ViTExtractor(None, arch="test_vit").save(tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="does not match checkpoint"):
        ViTExtractor(path, arch="resnet18")


def test_transforms_for_pretrained_follow_the_timm_config():
    transform, reader = get_transforms_for_pretrained("vits16_dino")
    tensor = transform(Image.new("RGB", (300, 200), (255, 0, 0)))
    assert tensor.shape == (3, 224, 224)
    expected_red = (1 - 0.485) / 0.229  # DINO uses ImageNet mean/std
    assert tensor[0].mean().item() == pytest.approx(expected_red, rel=1e-4)
    lite0_transform, _ = get_transforms_for_pretrained(OFFLINE_PRESET)
    assert lite0_transform(Image.new("RGB", (50, 50), (255, 255, 255)))[0].mean().item() == pytest.approx(1.0)
    assert reader is not None


def test_train_transform_augments_at_the_configured_size():
    config = ImageConfig(input_size=48, mean=(0.5,) * 3, std=(0.5,) * 3)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 90, 3), dtype=np.uint8))
    torch.manual_seed(0)
    first, second = train_transform(config)(image), train_transform(config)(image)
    assert first.shape == second.shape == (3, 48, 48)
    assert not torch.equal(first, second)
    assert torch.equal(eval_transform(config)(image), eval_transform(config)(image))


def test_a_loaded_extractor_is_described_from_its_own_image_config(tmp_path):
    loaded = load_extractor(ModelChoice("test_vit", "random"), image_size=48)
    assert loaded.model.image_config.input_size == 48 and not loaded.model.training
    assert loaded.description == "test_vit (random weights, 48 px)"
    checkpoint = loaded.model.save(tmp_path / "model.safetensors")
    again = load_extractor(ModelChoice("ignored", "checkpoint", str(checkpoint)))
    assert again.description == "test_vit (checkpoint model.safetensors, 48 px)" and again.choice.name == "test_vit"
    with pytest.raises(InputError, match="is a file: choose weights 'checkpoint'"):
        load_extractor(ModelChoice(str(checkpoint), "pretrained"))


def test_load_extractor_lets_allow_refuse_the_spec_before_anything_is_built():
    seen: list[ModelSpec] = []

    def over_budget(spec: ModelSpec) -> None:
        seen.append(spec)
        raise InputError("over this app's budget")

    with pytest.raises(InputError, match="over this app's budget"):  # offline, building it would fail otherwise
        load_extractor(ModelChoice("vits16_dino", "pretrained"), allow=over_budget)
    assert [(spec.kind, spec.timm_arch) for spec in seen] == [("preset", "vit_small_patch16_224")]


def test_random_weights_of_a_preset_are_described_by_its_architecture():
    assert ModelChoice("efficientnet_lite0_imagenet", "random").describe() == "tf_efficientnet_lite0 (random weights)"
    assert ModelChoice("efficientnet_lite0_imagenet", "pretrained").describe().startswith("efficientnet_lite0_imagenet")


def test_the_forward_takes_images_channels_last_with_the_default_layouts_features():
    """The faster layout changes rounding only: the same features as the backbone on the caller's layout."""
    extractor = ViTExtractor(None, arch="test_efficientnet").eval()
    images = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    layouts = []
    handle = extractor.model.register_forward_pre_hook(
        lambda module, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    with torch.inference_mode():
        features = extractor(images)
        handle.remove()
        reference = extractor.model(images.contiguous())
    assert layouts == [True] and images.is_contiguous()  # the caller's tensor is left as it was
    torch.testing.assert_close(features, reference, rtol=1e-4, atol=1e-5)
