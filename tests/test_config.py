import json

import pytest

from mnist_gan.config import CONFIG_FILE, ConfigError, GANConfig
from mnist_gan.errors import WeightsError


def test_defaults_are_the_classic_recipe():
    c = GANConfig()
    assert (c.architecture, c.latent_dim, c.batch_size, c.lr_g, c.lr_d, c.beta_1, c.loss) == (
        "classic", 100, 32, 2e-4, 2e-4, 0.5, "bce")
    assert not c.conditional and c.ema_decay == 0 and c.label_smoothing == 0


@pytest.mark.parametrize("field, value", [
    ("batch_size", 0), ("lr_g", -1e-4), ("lr_d", float("nan")), ("architecture", "resnet"), ("latent_dim", 0),
    ("beta_1", 1.0), ("loss", "wasserstein"), ("steps", 0), ("seed", -1), ("batch_size", "32"), ("conditional", 1),
    ("batch_size", True), ("label_smoothing", 0.7), ("ema_decay", 1.5), ("latent_code", 1), ("latent_code", 101),
])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        GANConfig(**{field: value})
    assert info.value.field == field and str(info.value).startswith(field)


def test_a_latent_code_and_class_labels_exclude_each_other():
    with pytest.raises(ConfigError, match="latent_code: a class-conditional model"):
        GANConfig(conditional=True, latent_code=10)


def test_a_huge_bad_value_is_quoted_short():
    with pytest.raises(ConfigError) as info:
        GANConfig(loss="x" * 1_000_000)
    assert str(info.value).startswith("loss: unknown 'xxx") and len(str(info.value)) < 200


def test_frozen():
    with pytest.raises(Exception):
        GANConfig().batch_size = 64


def test_json_round_trip(tmp_path):
    c = GANConfig(architecture="dcgan", conditional=True, batch_size=64, ema_decay=0.999, seed=7)
    path = c.save(tmp_path)
    assert path.name == CONFIG_FILE and json.loads(path.read_text())["architecture"] == "dcgan"
    assert GANConfig.load(tmp_path) == c


def test_load_rejects_unknown_fields_and_bad_json(tmp_path):
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"batch_size": 8, "learning_rate": 1}))
    with pytest.raises(ConfigError, match="learning_rate"):
        GANConfig.load(tmp_path)
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        GANConfig.load(tmp_path)
    with pytest.raises(WeightsError, match="not an mnist-gan weights folder"):
        GANConfig.load(tmp_path / "missing")


def test_the_configs_choices_are_what_the_model_builds():
    from mnist_gan import config
    from mnist_gan.model.architectures import ARCHITECTURES
    from mnist_gan.model.losses import LOSSES

    assert set(config.ARCHITECTURES) == set(ARCHITECTURES) and set(config.LOSSES) == set(LOSSES)
