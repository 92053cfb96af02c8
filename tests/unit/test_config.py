import pytest

from moldesign.config import ConfigError, ModelConfig, TrainConfig, load_toml, to_toml


def test_toml_roundtrip(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nlatent_dim = 32\nconv_channels = [8, 8]\nconv_kernels = [3, 5]\n[train]\nlr = 1\n")
    model, train = load_toml(path)
    assert model.latent_dim == 32 and model.conv_channels == (8, 8) and train.lr == 1.0
    again = tmp_path / "again.toml"
    again.write_text(to_toml(model, train))
    assert load_toml(again) == (model, train)


@pytest.mark.parametrize("text, message", [
    ("[model]\nlatnt_dim = 3\n", "unknown key.*latnt_dim"),
    ("[trian]\n", "unknown section.*trian"),
    ("[model]\nlatent_dim = 'big'\n", "model.latent_dim must be an integer"),
    ("[train]\nbucketed = 1\n", "train.bucketed must be true or false"),
    ("[model]\ndec_layers = 1\n", "dec_layers must be >= 2"),
    ("[model]\nconv_channels = [8]\nconv_kernels = [3, 3]\n", "same length"),
    ("[model\n", "invalid TOML"),
])
def test_bad_configs_are_rejected_with_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as e:
        load_toml(path)
    assert "\n" not in str(e.value)


def test_defaults_validate():
    assert ModelConfig().validate().latent_dim > 0
    assert TrainConfig().kl_max > 0
