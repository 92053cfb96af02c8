"""Configuration dataclasses. One ModelConfig fully determines the network; one TrainConfig the run.

TOML in (`moldesign train --config run.toml`, sections [model] and [train]), resolved TOML out
(written beside the checkpoint). Unknown keys and wrong types are rejected with one line.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


PROPERTIES: tuple[str, ...] = ("mw", "logp", "hbd", "hba", "tpsa")
"""The five conditioning properties, in the order used by tensors and checkpoints (definitions in
chem.py). Kept here, free of RDKit, so that training from a pack runs where RDKit is absent."""


# ------------------------------------------------------------------ design defaults (generate --like)
# Kept here, free of torch and RDKit, so the CLI's help can name them without importing either.
# Chosen together by bench/like_bench.py on 19 drug seeds used for no other choice (model card,
# session 5; mean Tanimoto of `generate --like SEED -n 30` to the seed): the former defaults
# (greedy, radius 0.3, the first 30 found) 0.231; oversampling 5 alone 0.363; + T 0.6, radius 0.2
# 0.397; oversampling 10 0.433.
DEFAULT_RADIUS = 0.2
"""Noise around the seed's μ: standard deviation per latent dimension, in units of the prior N(0, I)."""
LIKE_TEMPERATURE = 0.6
"""Decoding temperature of `generate --like` (greedy, 0, without a seed): sampling near μ decodes
the seed's close analogues where a greedy decode of μ can sit far from it."""
DEFAULT_OVERSAMPLE = 10
"""Candidates collected per molecule returned; the first n in output order are kept."""
MIN_SIMILARITY_RADIUS = 0.3
"""Where `generate --min-similarity`'s adaptive search starts (it was measured from 0.3; from 0.2
it found 2 instead of 6 celecoxib analogues at ≥ 0.5 in 1,000 decodes, session 5)."""


class ConfigError(ValueError):
    """Bad configuration (unknown key, wrong type, out-of-range value)."""


@dataclass
class ModelConfig:
    vocab_size: int = 0  # set from the vocabulary at training time
    max_len: int = 64  # longest token sequence incl. <bos>/<eos>; the encoder pads to this
    n_props: int = 5  # condition size (MW, LogP, HBD, HBA, TPSA)
    embed_dim: int = 48
    conv_channels: tuple[int, ...] = (96, 96, 96)
    conv_kernels: tuple[int, ...] = (9, 9, 11)
    enc_hidden: int = 256  # dense layer after the flattened convolutions
    latent_dim: int = 64
    dec_hidden: int = 384
    dec_layers: int = 2
    dec_dropout: float = 0.0

    def validate(self) -> "ModelConfig":
        if len(self.conv_channels) != len(self.conv_kernels) or not self.conv_channels:
            raise ConfigError("conv_channels and conv_kernels must be non-empty and the same length")
        for name in ("max_len", "n_props", "embed_dim", "enc_hidden", "latent_dim", "dec_hidden"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.dec_layers < 2:
            raise ConfigError(f"model.dec_layers must be >= 2, got {self.dec_layers}")
        if not 0 <= self.dec_dropout < 1:
            raise ConfigError(f"model.dec_dropout must be in [0, 1), got {self.dec_dropout}")
        if self.max_len < MIN_MAX_LEN:
            raise ConfigError(f"model.max_len must be >= {MIN_MAX_LEN} (<bos>, a few atoms, <eos>), got {self.max_len}")
        if self.vocab_size < 0 or min(self.conv_channels) < 1 or min(self.conv_kernels) < 1:
            raise ConfigError(f"model.conv_channels/conv_kernels/vocab_size must be positive, got "
                              f"{self.conv_channels}/{self.conv_kernels}/{self.vocab_size}")
        if max(self.conv_kernels) > self.max_len:  # a kernel wider than the padded sequence sees only padding
            raise ConfigError(f"model.conv_kernels {self.conv_kernels} must be <= model.max_len {self.max_len}")
        return self


@dataclass
class TrainConfig:
    data: str = "moses"  # "moses" / "zinc250k" (prepared tables), a .npz training pack, or .smi/.csv/.tsv/.parquet
    save_optimizer: bool = True  # AdamW moments in the checkpoint (2x the weights; off for small transfers)
    init_from: str = ""  # warm start: copy matching weights from this checkpoint (vocab/max_len widened)
    max_train: int = 0  # use at most this many training molecules (0 = all)
    epochs: float = 1.0  # may be fractional: the schedule is over epochs * n_train molecules
    batch_size: int = 256
    lr: float = 1e-3
    lr_final: float = 1e-4  # cosine decay to this over the planned run
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    kl_max: float = 0.5  # final KL weight (beta)
    kl_warmup: float = 0.3  # fraction of the run over which beta rises linearly from 0
    free_bits: float = 0.02  # nats per latent dim below which KL is not penalised (keeps units active)
    word_dropout: float = 0.1  # fraction of decoder input tokens replaced by <unk> (forces use of z)
    randomize: str = "none"  # randomized SMILES: none | input (random -> canonical) | both (random -> same random)
    random_variants: int = 8  # variants precomputed per molecule when randomizing (one drawn per epoch)
    random_fraction: float = 1.0  # share of molecules randomized each epoch (drawn per epoch); the rest keep
    # the canonical string, so an encoder trained on canonical strings keeps reading them while it learns others
    enc_lr_scale: float = 1.0  # encoder learning rate = lr * enc_lr_scale (Re-balanced VAE gives the encoder more)
    bucketed: bool = True
    seed: int = 0
    num_threads: int = 0  # torch threads; 0 = all cores
    val_size: int = 1000  # molecules held out from MOSES test for periodic validation
    val_every_minutes: float = 15.0
    checkpoint_every_minutes: float = 10.0
    time_limit_minutes: float = 0.0  # stop (after saving) when reached; 0 = no limit
    stop_after_steps: int = 0  # stop (after saving) after this many steps in this invocation; 0 = no limit
    device: str = "auto"

    def validate(self) -> "TrainConfig":
        """Every number finite and in range, one line naming the first bad key (train.<key>)."""
        import math

        ranges = {  # key: (lowest, lowest inclusive?, highest)
            "epochs": (0, False, 10_000), "batch_size": (1, True, 1_000_000), "lr": (0, False, 10.0),
            "lr_final": (0, True, 10.0), "weight_decay": (0, True, 10.0), "grad_clip": (0, False, 1e6),
            "kl_max": (0, True, 1e3), "kl_warmup": (0, True, 1.0), "free_bits": (0, True, 100.0),
            "word_dropout": (0, True, 0.99), "val_size": (1, True, 1_000_000), "num_threads": (0, True, 1024),
            "max_train": (0, True, 10**9), "val_every_minutes": (0, False, 1e6),
            "checkpoint_every_minutes": (0, False, 1e6), "time_limit_minutes": (0, True, 1e7),
            "stop_after_steps": (0, True, 10**12), "seed": (0, True, 2**32 - 1),
            "random_variants": (1, True, 1000), "enc_lr_scale": (0, False, 1000.0),
            "random_fraction": (0, True, 1.0),
        }
        for key, (lo, inclusive, hi) in ranges.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < lo or (v == lo and not inclusive) or v > hi:
                raise ConfigError(f"train.{key} must be a finite number in {'[' if inclusive else '('}{lo:g}, {hi:g}], got {v!r}")
        if self.randomize not in ("none", "input", "both"):
            raise ConfigError(f"train.randomize must be none, input or both, got {self.randomize!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"train.device must be auto, cpu or cuda, got {self.device!r}")
        return self


MIN_MAX_LEN = 8
CONFIG_CLASSES = {"model": ModelConfig, "train": TrainConfig}


def _coerce(cls, name: str, value: Any, section: str) -> Any:
    """Check a TOML value against the dataclass field type (int/float/bool/str/tuple[int])."""
    ftype = {f.name: f.type for f in fields(cls)}[name]
    ftype = ftype if isinstance(ftype, str) else getattr(ftype, "__name__", str(ftype))
    where = f"{section}.{name}"
    if ftype.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{where} must be a list of integers, got {value!r}")
        return tuple(value)
    if ftype == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if ftype == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if ftype == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def from_dict(cls, d: dict, section: str):
    """Build a config dataclass from a dict, rejecting unknown keys and wrong types."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) in [{section}]: {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    return cls(**{k: _coerce(cls, k, v, section) for k, v in d.items()})


def load_toml(path: str | Path) -> tuple[ModelConfig, TrainConfig]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" if not path.exists() else f"config is not a file: {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (TOML) file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    unknown = sorted(set(raw) - set(CONFIG_CLASSES))
    if unknown:
        raise ConfigError(f"unknown section(s) in {path}: {', '.join(unknown)}; allowed: model, train")
    model = from_dict(ModelConfig, raw.get("model", {}), "model").validate()
    train = from_dict(TrainConfig, raw.get("train", {}), "train").validate()
    return model, train


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def to_toml(model: ModelConfig, train: TrainConfig) -> str:
    """The resolved configuration as TOML (every field, defaults included)."""
    lines = []
    for section, cfg in (("model", model), ("train", train)):
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in dataclasses.asdict(cfg).items()]
        lines.append("")
    return "\n".join(lines)
