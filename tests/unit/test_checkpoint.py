import pytest
import torch

from moldesign.model import checkpoint
from moldesign.model.checkpoint import CheckpointError


def test_checkpoint_is_a_plain_dict_loadable_with_weights_only(tiny_model_path):
    ckpt = torch.load(tiny_model_path, weights_only=True)
    assert ckpt["model_type"] == "moldesign.cvae" and ckpt["format_version"] == checkpoint.FORMAT_VERSION
    assert ckpt["property_names"] == ["mw", "logp", "hbd", "hba", "tpsa"]
    assert ckpt["vocab"]["tokens"][:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert len(ckpt["scaler"]["mean"]) == 5 and len(ckpt["property_stats"]["sample"]) == 100
    assert ckpt["train_info"]["n_train"] == 100 and ckpt["train_info"]["wall_seconds"] > 0
    assert ckpt["model_config"]["vocab_size"] == len(ckpt["vocab"]["tokens"])


def test_shipping_without_optimizer_state(tiny_bundle, tmp_path):
    path = tmp_path / "ship.pt"
    checkpoint.save(tiny_bundle, path, include_optimizer=False)
    assert "optimizer_state" not in torch.load(path, weights_only=True)
    assert checkpoint.load(path).optimizer_state is None


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="model file not found"):
        checkpoint.load(tmp_path / "nope.pt")


def test_corrupted_file_gives_one_line(tiny_model_path, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(tiny_model_path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable moldesign checkpoint") as e:
        checkpoint.load(bad)
    assert "\n" not in str(e.value)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        checkpoint.load(text)


def test_wrong_type_and_version(tiny_model_path, tmp_path):
    ckpt = torch.load(tiny_model_path, weights_only=True)
    other = tmp_path / "other.pt"
    torch.save({**ckpt, "model_type": "chemprop"}, other)
    with pytest.raises(CheckpointError, match="not a moldesign CVAE checkpoint.*chemprop"):
        checkpoint.load(other)
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="model_type=None"):
        checkpoint.load(other)
    torch.save({**ckpt, "format_version": 99}, other)
    with pytest.raises(CheckpointError, match="format 99; this moldesign reads 1"):
        checkpoint.load(other)


def test_damaged_weights(tiny_model_path, tmp_path):
    ckpt = torch.load(tiny_model_path, weights_only=True)
    ckpt["state_dict"].pop("decoder.out.weight")
    damaged = tmp_path / "damaged.pt"
    torch.save(ckpt, damaged)
    with pytest.raises(CheckpointError, match="is damaged"):
        checkpoint.load(damaged)
