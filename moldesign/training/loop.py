"""Training loop: ELBO with a KL schedule and free bits, AdamW, clipping, bucketed batches,
periodic validation, time-based checkpoints and exact resume.

Loss per molecule = Σ_t CE(token_t) + β(step) · Σ_d max(KL_d, free_bits)
  β rises linearly from 0 to kl_max over the first kl_warmup of the run (KL annealing);
  free bits keep each latent unit from being pushed all the way to the prior (posterior collapse,
  which turns a SMILES VAE into a plain character RNN with an unused latent);
  word dropout replaces decoder inputs by <unk> so the decoder must read z.

Distributed data parallel (torchrun): `torchrun --nproc_per_node N -m moldesign.cli train ...`
runs N copies; each finds RANK/WORLD_SIZE/LOCAL_RANK in its environment, joins a process group
(gloo on CPU, nccl on CUDA) and wraps the network in DistributedDataParallel. Every rank draws
the same bucketed batch list from the per-epoch seed and takes its own slice of each global batch
(batch_size stays the global batch, so steps, schedules, `--resume` positions and checkpoints
mean the same as in a single-process run); gradients are all-reduced, so the ranks hold the same
parameters after every step. Rank 0 alone validates and writes metrics, config and checkpoints;
the time-based decisions (validate, checkpoint, stop) are all-reduced so every rank takes them
at the same step. The single-process path does none of this and is unchanged.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..model import checkpoint as ckpt_io
from ..config import PROPERTIES, ModelConfig, TrainConfig, to_toml
from ..data import (DataError, cache_dir, check_input_file, EncodedSet, PropertyScaler, bucket_batches, encode_table, load_moses, load_training_table, load_zinc250k)
from ..model.networks import CVAE, PAD_ID, count_parameters, kl_per_dim
from ..decoding.sampling import encodable, encode_ids, reconstruct, resolve_device, sample_prior
from ..model.tokenizer import Vocabulary

ACTIVE_UNIT_NATS = 0.01  # a latent dimension with mean KL above this is "active"


MIN_MOLECULES = 4  # a user file: at least one validation molecule and a few to train on


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def torchrun_env(required: bool = False) -> DistEnv:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE). Without it:
    a single process, or a ValueError when `required` (the --distributed flag outside torchrun)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        if required:
            raise ValueError("--distributed needs torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, "
                             "MASTER_PORT): launch with `torchrun --nproc_per_node N -m moldesign.cli train ...`")
        return DistEnv()
    try:
        world = int(os.environ["WORLD_SIZE"])
        return DistEnv(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", 0)),
                       int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    except ValueError:
        raise ValueError(f"torchrun environment is not numeric: RANK={os.environ['RANK']!r}, "
                         f"WORLD_SIZE={os.environ['WORLD_SIZE']!r}") from None


def shard(idx: np.ndarray, env: DistEnv) -> np.ndarray:
    """This rank's part of a global batch: contiguous near-equal slices (a bucketed batch is sorted
    by length, so each slice pads to about the same length). A batch smaller than the world size
    (the last one of an epoch, at most) is given whole to the ranks left empty: every rank must
    take part in each gradient all-reduce."""
    if not env.active:
        return idx
    part = np.array_split(idx, env.world_size)[env.rank]
    return part if len(part) else idx


@dataclass
class Datasets:
    train_table: pd.DataFrame | None  # None when read from a training pack (ids only)
    val_table: pd.DataFrame  # smiles + PROPERTIES
    train: EncodedSet
    vocab: Vocabulary
    scaler: PropertyScaler
    source: str
    stats: dict  # property_stats of the training molecules (stored in the checkpoint)
    variants: object = None  # randomize.Variants (K random spellings per molecule) when train.randomize is set


PACK_VERSION = 1


def write_pack(ds: Datasets, model_cfg: ModelConfig, path: str | Path) -> dict:
    """A training pack: everything `train` needs, as arrays, with no RDKit and no SMILES parsing at
    the other end (for a GPU machine that has torch but not RDKit, and a 64 MiB transfer limit).

    ids (n, L) uint8 token ids with <bos>/<eos>, lengths (n,), cond (n, P) float32 scaled; the
    validation molecules as SMILES + raw properties; vocabulary, scaler, property stats, source;
    with train.randomize set, the K randomized spellings per molecule too (variant_ids (K, n, L)
    uint8, variant_lengths (K, n)), made here with RDKit since the GPU side has none (K = 4 of
    ZINC250k: ~20 MB more).
    """
    import json

    from ..data import atomic_path

    if len(ds.vocab) > 255:
        raise ValueError(f"vocabulary of {len(ds.vocab)} tokens does not fit uint8 ids")
    arrays = {
        "version": np.array(PACK_VERSION), "max_len": np.array(model_cfg.max_len),
        "ids": ds.train.ids.astype(np.uint8), "lengths": ds.train.lengths.astype(np.int16), "cond": ds.train.cond,
        "val_smiles": np.array(ds.val_table["smiles"].tolist()),
        "val_props": ds.val_table[list(PROPERTIES)].to_numpy(np.float64),
        "meta": np.array(json.dumps({"tokens": ds.vocab.tokens, "scaler": ds.scaler.to_dict(), "stats": ds.stats,
                                     "source": ds.source})),
    }
    if ds.variants is not None:
        arrays.update(variant_ids=ds.variants.ids, variant_lengths=ds.variants.lengths.astype(np.int16),
                      variant_fallback=np.array(ds.variants.n_fallback))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return {"out": str(path), "n_train": len(ds.train), "n_val": len(ds.val_table), "vocab": len(ds.vocab),
            "bytes": path.stat().st_size}


def load_pack(path: str | Path, model_cfg: ModelConfig) -> Datasets:
    import json

    from ..config import ConfigError

    with np.load(path, allow_pickle=False) as z:
        if int(z["version"]) != PACK_VERSION:
            raise ConfigError(f"{path}: training pack version {int(z['version'])}, this moldesign reads {PACK_VERSION}")
        if int(z["max_len"]) > model_cfg.max_len:
            raise ConfigError(f"{path} was packed for max_len {int(z['max_len'])} > model.max_len {model_cfg.max_len}")
        meta = json.loads(str(z["meta"]))
        train = EncodedSet(z["ids"].astype(np.int64), z["lengths"].astype(np.int64), z["cond"].astype(np.float32))
        val = pd.DataFrame(z["val_props"], columns=list(PROPERTIES))
        val.insert(0, "smiles", z["val_smiles"].tolist())
        variants = None
        if "variant_ids" in z.files:
            from .randomize import Variants

            variants = Variants(z["variant_ids"], z["variant_lengths"].astype(np.int64), int(z["variant_fallback"]))
    vocab = Vocabulary(list(meta["tokens"]))
    return Datasets(None, val, train, vocab, PropertyScaler.from_dict(meta["scaler"]),
                    f"{meta['source']} (pack {Path(path).name})", meta["stats"], variants)


def property_stats(table: pd.DataFrame, rng: np.random.Generator, n_sample: int = 2000) -> dict:
    """Training-distribution summary stored in the checkpoint (plain lists: weights_only-safe)."""
    values = table[list(PROPERTIES)].to_numpy(dtype=np.float64)
    rows = values[rng.choice(len(values), size=min(n_sample, len(values)), replace=False)]
    return {
        "names": list(PROPERTIES),
        "mean": values.mean(0).tolist(), "std": values.std(0).tolist(),
        "min": values.min(0).tolist(), "max": values.max(0).tolist(),
        "sample": rows.tolist(),
    }


def prepare_datasets(model_cfg: ModelConfig, cfg: TrainConfig, vocab: Vocabulary | None = None,
                     scaler: PropertyScaler | None = None, log: Callable = print) -> Datasets:
    """Load the training table, build (or reuse, when resuming) vocabulary and scaler, encode.
    A `.npz` training pack (write_pack) is read as it is: its vocabulary and scaler must equal the
    resumed checkpoint's."""
    rng = np.random.default_rng(cfg.seed)
    if str(cfg.data).endswith(".npz"):
        ds = load_pack(check_input_file(cfg.data), model_cfg)
        if vocab is not None and (vocab.tokens != ds.vocab.tokens or not np.allclose(scaler.mean, ds.scaler.mean)):
            from ..config import ConfigError

            raise ConfigError(f"{cfg.data}: its vocabulary/scaler differ from the checkpoint being resumed")
        if cfg.randomize != "none" and ds.variants is None:
            from ..config import ConfigError

            raise ConfigError(f"{cfg.data} holds no randomized SMILES: pack it with train.randomize set in the config")
        return ds
    if cfg.data == "moses":
        train_table = load_moses("train")
        val_table = load_moses("test").sample(n=cfg.val_size, random_state=cfg.seed)
        source = "MOSES train (molsets 0.3.1)"
    elif cfg.data == "zinc250k":
        # validation molecules come out of train: ZINC test stays for evaluation only
        table = load_zinc250k("train")
        perm = rng.permutation(len(table))
        val_table, train_table = table.iloc[perm[: cfg.val_size]], table.iloc[perm[cfg.val_size:]]
        source = "ZINC250k train (DD-VAE split; standardized: largest fragment, uncharged, no stereo)"
    else:
        # properties of a large file are cached by its checksum, so a resumed run does not recompute them
        table = load_training_table(cfg.data, log=log, cache_dir=cache_dir("tables"))
        if len(table) < MIN_MOLECULES:
            raise DataError(f"{cfg.data}: {len(table)} valid molecules; training needs at least {MIN_MOLECULES}")
        n_val = min(cfg.val_size, max(1, len(table) // 20))
        perm = rng.permutation(len(table))
        val_table, train_table = table.iloc[perm[:n_val]], table.iloc[perm[n_val:]]
        source = str(cfg.data)
    if cfg.max_train and len(train_table) > cfg.max_train:
        train_table = train_table.sample(n=cfg.max_train, random_state=cfg.seed)
    train_table = train_table.reset_index(drop=True)
    vocab = vocab or Vocabulary.build(train_table["smiles"])
    scaler = scaler or PropertyScaler.fit(train_table)
    train, keep = encode_table(train_table, vocab, scaler, model_cfg.max_len)
    if (~keep).sum():
        log(f"left out {(~keep).sum()} training molecules longer than max_len={model_cfg.max_len} tokens")
    train_table = train_table[keep].reset_index(drop=True)
    if not len(train_table):
        raise DataError(f"{cfg.data}: no training molecule fits this model (longer than max_len="
                        f"{model_cfg.max_len} tokens, or tokens outside the vocabulary)")
    # validation molecules the vocabulary cannot encode (resume onto new data) are left out
    _, val_keep = encode_table(val_table, vocab, scaler, model_cfg.max_len)
    if (~val_keep).sum():
        log(f"left out {(~val_keep).sum()} validation molecules this model cannot encode")
    val_table = val_table[val_keep]
    if not len(val_table):
        raise DataError(f"{cfg.data}: no validation molecule can be encoded by this model")
    stats = property_stats(train_table, np.random.default_rng(cfg.seed))
    ds = Datasets(train_table, val_table.reset_index(drop=True), train, vocab, scaler, source, stats)
    ds.variants = training_variants(ds, model_cfg, cfg, log)
    return ds


def training_variants(ds: Datasets, model_cfg: ModelConfig, cfg: TrainConfig, log: Callable = print):
    """The precomputed randomized SMILES of the training molecules (None when not randomizing)."""
    if cfg.randomize == "none":
        return None
    from .randomize import cached_variants

    return cached_variants(ds.train_table["smiles"].tolist(), ds.vocab, model_cfg.max_len, cfg.random_variants,
                           cfg.seed, cache_dir("variants"), log)


def epoch_strings(train: EncodedSet, variants, cfg: TrainConfig, epoch: int):
    """(target ids, target lengths, encoder ids or None, encoder lengths or None) for one epoch.

    none: canonical strings, the encoder reads the target. input: the encoder reads one random
    variant per molecule, the decoder writes the canonical string. both: encoder and decoder read
    the same random variant. With random_fraction < 1 only that share of the molecules (drawn per
    epoch) is randomized; the others keep the canonical string. The draws depend only on (seed,
    epoch), so a resumed run sees the same strings."""
    if variants is None:
        return train.ids, train.lengths, None, None
    ids, lengths = variants.pick(np.random.default_rng([cfg.seed, epoch, 7]))  # (n, L) uint8, (n,)
    if cfg.random_fraction < 1.0:  # the other molecules keep their canonical string this epoch
        keep = np.random.default_rng([cfg.seed, epoch, 11]).random(len(lengths)) >= cfg.random_fraction  # (n,)
        width = max(ids.shape[1], train.ids.shape[1])
        mixed = np.zeros((len(lengths), width), dtype=np.uint8)
        mixed[:, : ids.shape[1]] = ids
        mixed[keep] = 0
        mixed[keep, : train.ids.shape[1]] = train.ids[keep]
        ids, lengths = mixed, np.where(keep, train.lengths, lengths)
    if cfg.randomize == "both":
        return ids, lengths, None, None
    return train.ids, train.lengths, ids, lengths


def epoch_batches(tgt_len: np.ndarray, enc_len: np.ndarray | None, cfg: TrainConfig,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's index batches, bucketed by the length of what the *encoder* reads.

    Why not the target's length: in train mode the encoder's BatchNorm normalizes with the batch's
    statistics, so a batch of equal target length tells every row that length. With canonical
    strings the encoder sees it anyway (the padding); a random spelling does not show the canonical
    length, and the randomize = "input" run of session 10 learned to lean on the leak: at eval time
    (running statistics) its NLL was 1x its training-mode NLL at the mean length and 3x at 28 or 52
    tokens, and its held-out reconstruction was 0."""
    return bucket_batches(tgt_len if enc_len is None else enc_len, cfg.batch_size, rng, cfg.bucketed)


FRESH_MOMENTS_WARMUP = 200  # steps of linear lr warm-up when a run resumes without AdamW moments


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Cosine decay from lr to lr_final over the planned run."""
    frac = min(1.0, step / max(1, total))
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * frac))


def beta_at(cfg: TrainConfig, step: int, total: int) -> float:
    warm = cfg.kl_warmup * total
    return cfg.kl_max if warm <= 0 else cfg.kl_max * min(1.0, step / warm)


def elbo_terms(model: CVAE, ids: torch.Tensor, cond: torch.Tensor, word_dropout: float,
               enc_ids: torch.Tensor | None = None):
    """Returns (recon (scalar, nats/molecule), kl_dims (Z,), token accuracy). The encoder reads
    enc_ids (another spelling of the molecules) when given, else ids."""
    logits, mu, logvar = model(ids, cond, word_dropout, enc_ids)  # logits (B, L-1, V)
    target = ids[:, 1:]  # (B, L-1)
    ce = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD_ID, reduction="sum")
    recon = ce / ids.shape[0]
    mask = target != PAD_ID
    acc = ((logits.argmax(-1) == target) & mask).sum().float() / mask.sum()
    return recon, kl_per_dim(mu, logvar), acc


def same_molecule(a: str, b: str) -> bool:
    """Reconstruction counts the molecule, not the string (a model trained on randomized SMILES
    may write another spelling). Without RDKit (a GPU machine), the strings are compared."""
    if a == b:
        return True
    try:
        from ..chem import try_canonical
    except ImportError:
        return False
    ca = try_canonical(a, isomeric=False)
    return ca is not None and ca == try_canonical(b, isomeric=False)


@torch.no_grad()
def validate(bundle: ckpt_io.Bundle, val_table: pd.DataFrame, n_prior: int = 500, seed: int = 0) -> dict:
    """Held-out metrics: teacher-forced NLL (nats/molecule, at μ) and token accuracy, KL, greedy
    reconstruction, and validity of prior samples. NLL and accuracy move early in training;
    exact reconstruction needs token accuracy near 0.99 on ~40-token strings and moves late."""
    model = bundle.model
    was_training = model.training
    model.eval()
    keep = [encodable(bundle, s) for s in val_table["smiles"]]
    ok = val_table["smiles"][keep].tolist()
    props = val_table.loc[keep, list(PROPERTIES)].to_numpy(np.float64)  # (n, P) raw, as stored with the table
    out = {}
    if ok:
        ids, _ = encode_ids(bundle, ok)  # (n, L) on the model's device
        cond = torch.from_numpy(bundle.scaler.transform(props)).to(ids.device)
        recon_nll, kl_dims, acc = elbo_terms(model, ids, cond, 0.0)
        out = {"val_nll": float(recon_nll), "val_token_acc": float(acc), "val_kl": float(kl_dims.sum())}
    # unconstrained: the raw model is what training improves (and the grammar mask needs RDKit)
    recon = reconstruct(bundle, ok, props=props, constrained=False) if ok else []
    exact = float(np.mean([same_molecule(a, b) for a, b in zip(ok, recon)])) if ok else 0.0
    samples, _ = sample_prior(bundle, n_prior, seed=seed, temperature=1.0, constrained=False)
    try:  # RDKit judges validity; a GPU machine may not have it (then the column stays empty)
        from ..chem import is_valid

        validity = float(np.mean([is_valid(s) for s in samples]))
    except ImportError:
        validity = None
    model.train(was_training)
    return {**out, "val_reconstruction": exact, "val_prior_validity": validity}


@torch.no_grad()
def recalibrate_batchnorm(model: CVAE, data: EncodedSet, n_batches: int = 20, batch_size: int = 256,
                          seed: int = 0) -> None:
    """Recompute the encoder's BatchNorm running statistics on random (not length-bucketed) batches.

    Why: training batches are bucketed by length, and the encoder convolves the sequence padded to
    max_len, so a batch's activation statistics depend on its length; the running averages
    (momentum 0.1) then describe the last few buckets seen, and eval-mode encodings of molecules of
    other lengths swing with them (validation NLL and reconstruction jumped from one validation to
    the next). Here the statistics are reset and averaged (momentum None: cumulative) over
    n_batches random batches of the training set, whose lengths follow the data. Training itself
    uses batch statistics and is unaffected; no torch RNG is consumed (numpy picks the rows)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or len(data) == 0:
        return
    was_training = model.training
    momenta = [m.momentum for m in norms]
    device = next(model.parameters()).device
    rng = np.random.default_rng([seed, 12345])
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for _ in range(n_batches):
        idx = rng.choice(len(data), size=min(batch_size, len(data)), replace=False)
        L = int(data.lengths[idx].max())
        ids = torch.from_numpy(data.ids[idx, :L]).to(device)  # (b, L)
        cond = torch.from_numpy(data.cond[idx]).to(device)  # (b, P)
        model.encode(ids, cond)
    for m, mom in zip(norms, momenta):
        m.momentum = mom
    model.train(was_training)


def warm_start(model: CVAE, prev: ckpt_io.Bundle, vocab: Vocabulary, log: Callable = print) -> None:
    """Initialise `model` from another checkpoint's weights where they mean the same thing.

    Token rows (embeddings, output layer) are copied for tokens both vocabularies share; new tokens
    keep their fresh initialisation. The encoder's dense layer reads the flattened (C, max_len)
    conv output, index c * max_len + l: old position l maps to new position l, new positions beyond
    the old max_len start at zero, and the condition columns (last P) are copied. Everything else
    must have identical shapes (same widths, latent size, layers)."""
    old_sd, new_sd = prev.model.state_dict(), model.state_dict()
    shared = [(i_new, prev.vocab.index[t]) for i_new, t in enumerate(vocab.tokens) if t in prev.vocab.index]
    rows_new = torch.tensor([a for a, _ in shared])
    rows_old = torch.tensor([b for _, b in shared])
    L_old, L_new = prev.config.max_len, model.cfg.max_len
    P = model.cfg.n_props
    for name, w in new_sd.items():
        old = old_sd.get(name)
        if old is None:
            raise ValueError(f"warm start: {name} missing from the initialising checkpoint")
        if name in ("encoder.embed.weight", "decoder.embed.weight", "decoder.out.weight", "decoder.out.bias"):
            w[rows_new] = old[rows_old]
        elif name == "encoder.dense.weight":
            C = (w.shape[1] - P) // L_new
            if L_new < L_old or (old.shape[1] - P) != C * L_old:
                raise ValueError("warm start: encoder widths differ or max_len shrinks")
            w.zero_()
            w[:, : C * L_new].view(-1, C, L_new)[:, :, :L_old] = old[:, : C * L_old].view(-1, C, L_old)
            w[:, -P:] = old[:, -P:]
        elif old.shape == w.shape:
            w.copy_(old)
        else:
            raise ValueError(f"warm start: {name} has shape {tuple(old.shape)} there, {tuple(w.shape)} here")
    model.load_state_dict(new_sd)
    log(f"warm start: weights copied; {len(shared)} of {len(vocab)} tokens shared, max_len {L_old} -> {L_new}")


def train(model_cfg: ModelConfig, cfg: TrainConfig, out: str | Path, resume: str | Path | None = None,
          log: Callable = print, progress: bool = True, distributed: bool | None = None,
          on_step: Callable[[int, torch.nn.Module, float], None] | None = None) -> ckpt_io.Bundle:
    """Train (or resume) and write the checkpoint to `out`; metrics.csv and the resolved config
    (`<out>.toml`) go beside it. Returns the final bundle.

    distributed: None = DDP when torchrun's environment says WORLD_SIZE > 1; True = require it.
    A process group the caller already initialised is used (and left open); otherwise one is
    initialised here and destroyed at the end. on_step(step, module, loss): called on every rank
    after each optimizer step (tests, monitoring)."""
    env = torchrun_env(required=bool(distributed)) if distributed is not False else DistEnv()
    if not env.active:
        return _train(model_cfg, cfg, out, resume, log, progress, DistEnv(), on_step)
    import torch.distributed as dist

    device = resolve_device(cfg.device)
    own_group = not dist.is_initialized()
    if own_group:
        if device.type == "cuda":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(model_cfg, cfg, out, resume, log if env.is_main else (lambda m: None),
                      progress and env.is_main, env, on_step)
    finally:
        if own_group:
            dist.destroy_process_group()


def _train(model_cfg: ModelConfig, cfg: TrainConfig, out: str | Path, resume: str | Path | None,
           log: Callable, progress: bool, env: DistEnv, on_step) -> ckpt_io.Bundle:
    from tqdm import tqdm

    out = Path(out)
    cfg.validate()
    model_cfg.validate()
    torch.manual_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    if env.active:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda":
            device = torch.device("cuda", env.local_rank)
        elif not cfg.num_threads:  # N processes on one machine share its cores instead of each taking all
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // env.local_world_size))

    prev = ckpt_io.load(resume, device) if resume else None
    if prev is not None:
        model_cfg = prev.config  # the network is fixed by the checkpoint being resumed
    ds = prepare_datasets(model_cfg, cfg, prev.vocab if prev else None, prev.scaler if prev else None, log)
    model_cfg = dataclasses.replace(model_cfg, vocab_size=len(ds.vocab), n_props=len(PROPERTIES))
    model = prev.model if prev else CVAE(model_cfg)
    if prev is None and cfg.init_from:
        warm_start(model, ckpt_io.load(cfg.init_from), ds.vocab, log)
    model.to(device).train()
    # DDP broadcasts rank 0's parameters now, so every rank starts from the same weights
    net = DistributedDataParallel(model, device_ids=[env.local_rank] if device.type == "cuda" else None) \
        if env.active else model
    # two groups so the encoder may learn faster (enc_lr_scale); group "lr_scale" multiplies the schedule
    opt = torch.optim.AdamW([
        {"params": list(model.encoder.parameters()), "lr_scale": cfg.enc_lr_scale},
        {"params": list(model.decoder.parameters()), "lr_scale": 1.0},
    ], lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "molecules_seen": 0, "wall_seconds": 0.0}
    ramp_from = None  # the step from which lr ramps up again (resumed without AdamW moments)
    if prev is not None:
        state.update(prev.train_state or {})
        if "torch_rng" in state:
            torch.set_rng_state(state.pop("torch_rng"))
        if prev.optimizer_state is not None and len(prev.optimizer_state["param_groups"]) == len(opt.param_groups):
            opt.load_state_dict(prev.optimizer_state)
            for g in opt.param_groups[:1]:  # the scale is this run's setting, not the stored one
                g["lr_scale"] = cfg.enc_lr_scale
        else:
            if prev.optimizer_state is not None:
                log("resume: the checkpoint's optimizer has one parameter group (encoder and decoder together); "
                    "AdamW moments start fresh")
            else:  # shipped checkpoints leave the moments out to stay small; they rebuild in a few hundred steps
                log("resume: checkpoint has no optimizer state; AdamW moments start fresh")
            # fresh moments make AdamW's first steps ~lr per weight whatever the gradient's size: at a
            # mid-schedule lr (2.6e-4) 0.3 minutes of that cut validation reconstruction 0.48 -> 0.34
            ramp_from = state["step"]
    if env.active:  # word dropout and z noise differ per rank, reproducibly (also on resume)
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, state["step"], env.rank]).generate_state(1)[0]))
    variants = ds.variants  # None unless train.randomize is set
    n_train = len(ds.train)
    total_steps = math.ceil(cfg.epochs * math.ceil(n_train / cfg.batch_size))  # whole epochs end on an epoch
    info = dict(prev.train_info) if prev else {}
    if not env.active:  # a single-process run continuing a DDP checkpoint is no longer distributed
        info.pop("world_size", None), info.pop("backend", None)
    stats = prev.property_stats if prev else ds.stats
    bundle = ckpt_io.Bundle(model, ds.vocab, ds.scaler, stats, info)
    log(f"data: {ds.source}, {n_train} train molecules, vocab {len(ds.vocab)}; model {count_parameters(model):,} "
        f"parameters; {total_steps} steps of {cfg.batch_size} planned on {device}")

    if env.is_main:
        out.parent.mkdir(parents=True, exist_ok=True)
        Path(str(out) + ".toml").write_text(to_toml(model_cfg, cfg))
    metrics_path = out.parent / "metrics.csv"

    done_at = {"calibrated": -1, "saved": -1}  # step at which each was last done (weights unchanged since)

    def calibrate() -> None:
        """Eval-mode BatchNorm statistics for validation and the saved model, once per step."""
        if done_at["calibrated"] != state["step"]:
            recalibrate_batchnorm(bundle.model, ds.train, seed=state["step"])
            done_at["calibrated"] = state["step"]

    def snapshot(last_val: dict) -> None:
        calibrate()
        bundle.optimizer_state = opt.state_dict()
        bundle.train_state = {**state, "torch_rng": torch.get_rng_state()}
        bundle.train_info = {
            **info, "data_source": ds.source, "n_train": n_train, "vocab_size": len(ds.vocab),
            "epochs": state["molecules_seen"] / n_train, "molecules_seen": state["molecules_seen"],
            "steps": state["step"], "wall_seconds": round(state["wall_seconds"], 1),
            "device": str(device), "torch_threads": torch.get_num_threads(),
            "train_config": dataclasses.asdict(cfg), **last_val,
        }
        if env.active:
            bundle.train_info.update(world_size=env.world_size, backend=dist.get_backend())
        ckpt_io.save(bundle, out, include_optimizer=cfg.save_optimizer)
        done_at["saved"] = state["step"]

    run_start = t_last = t_ckpt = t_val = time.time()
    first_step = state["step"]
    stop_signal = _StopOnSignal()  # SIGTERM/SIGINT: finish the step, save, return
    last_val: dict = {k: v for k, v in info.items() if k.startswith("val_")}
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "acc": 0.0, "n": 0}
    kl_acc = torch.zeros(model_cfg.latent_dim)
    bar = tqdm(total=total_steps, initial=state["step"], disable=not progress, unit="step", mininterval=2.0)
    stop = False
    while state["step"] < total_steps and not stop:
        rng = np.random.default_rng([cfg.seed, state["epoch"]])  # same batch order on resume
        # this epoch's spellings: target (decoder) and encoder input, (n, L) each; index batches
        tgt_ids, tgt_len, enc_ids, enc_len = epoch_strings(ds.train, variants, cfg, state["epoch"])
        batches = epoch_batches(tgt_len, enc_len, cfg, rng)
        for idx in batches[state["batch_in_epoch"]:]:
            mine = shard(idx, env)  # idx itself in a single process
            L = int(tgt_len[mine].max())
            ids = torch.from_numpy(tgt_ids[mine, :L].astype(np.int64)).to(device)  # (B, L); B = this rank's share
            enc = None
            if enc_ids is not None:  # randomize = input: the encoder reads a random spelling
                enc = torch.from_numpy(enc_ids[mine, : int(enc_len[mine].max())].astype(np.int64)).to(device)
            cond = torch.from_numpy(ds.train.cond[mine]).to(device)  # (B, P)
            lr, beta = lr_at(cfg, state["step"], total_steps), beta_at(cfg, state["step"], total_steps)
            if ramp_from is not None:  # linear warm-up over FRESH_MOMENTS_WARMUP steps after such a resume
                lr *= min(1.0, (state["step"] - ramp_from + 1) / FRESH_MOMENTS_WARMUP)
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            recon, kl_dims, acc = elbo_terms(net, ids, cond, cfg.word_dropout, enc)
            kl_fb = torch.clamp(kl_dims, min=cfg.free_bits).sum()
            loss = recon + beta * kl_fb
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if on_step is not None:
                on_step(state["step"] + 1, model, loss.item())

            now = time.time()
            state["wall_seconds"] += now - t_last
            t_last = now
            state["step"] += 1
            state["batch_in_epoch"] += 1
            state["molecules_seen"] += len(idx)
            sums["loss"] += loss.item(); sums["recon"] += recon.item(); sums["acc"] += acc.item()
            sums["kl"] += kl_dims.sum().item(); sums["n"] += 1
            kl_acc += kl_dims.detach().cpu()
            bar.update(1)
            if state["step"] % 20 == 0:
                bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.1f}", kl=f"{sums['kl'] / sums['n']:.1f}",
                                acc=f"{sums['acc'] / sums['n']:.3f}", beta=f"{beta:.2f}")
            # both limits are per invocation, so `--resume` gets a fresh budget
            time_up = (cfg.time_limit_minutes > 0 and now - run_start >= cfg.time_limit_minutes * 60) or (
                cfg.stop_after_steps > 0 and state["step"] - first_step >= cfg.stop_after_steps) or stop_signal.raised
            done = state["step"] >= total_steps
            val_due, ckpt_due = now - t_val >= cfg.val_every_minutes * 60, now - t_ckpt >= cfg.checkpoint_every_minutes * 60
            if env.active:  # one decision for all ranks (clocks and signals differ): any rank's flag counts
                flags = torch.tensor([val_due, ckpt_due, time_up], dtype=torch.int32, device=device)  # nccl: on GPU
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                val_due, ckpt_due, time_up = (bool(f) for f in flags)
            if val_due or done or time_up:
                if env.active:  # the logged training averages are over all ranks' shares
                    packed = torch.tensor([sums[k] for k in ("loss", "recon", "kl", "acc")] + kl_acc.tolist(),
                                          dtype=torch.float64, device=device)
                    dist.all_reduce(packed)
                    packed = (packed / env.world_size).cpu()
                    sums.update(zip(("loss", "recon", "kl", "acc"), packed[:4].tolist()))
                    kl_acc = packed[4:].float()
                if env.is_main:
                    calibrate()
                    model.eval()
                    last_val = validate(bundle, ds.val_table, seed=cfg.seed)
                    model.train()
                    t_val = time.time()
                    t_last = t_val  # validation time is not training time
                    kl_mean = kl_acc / max(1, sums["n"])
                    row = {"step": state["step"], "epoch": round(state["molecules_seen"] / n_train, 4),
                           "molecules_seen": state["molecules_seen"], "wall_seconds": round(state["wall_seconds"], 1),
                           "lr": lr, "beta": beta, **{k: sums[k] / max(1, sums["n"]) for k in ("loss", "recon", "kl", "acc")},
                           "active_units": int((kl_mean > ACTIVE_UNIT_NATS).sum()), **last_val}
                    _append_csv(metrics_path, row)
                    log(f"step {row['step']}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                            for k, v in row.items() if k != "step"))
                    last_val["active_units"] = row["active_units"]
                    last_val["kl_per_dim"] = [round(float(x), 4) for x in kl_mean]
                else:
                    t_val = t_last = time.time()
                sums = {k: 0.0 for k in sums} | {"n": 0}
                kl_acc.zero_()
            if ckpt_due or done or time_up:
                if env.is_main:
                    snapshot(last_val)
                t_ckpt = time.time()
            if done or time_up:
                stop = True
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    bar.close()
    stop_signal.restore()
    if env.is_main and done_at["saved"] != state["step"]:  # the loop's last step saved already
        snapshot(last_val)
    if env.active:
        dist.barrier()  # the other ranks return once the final checkpoint is on disk
    bundle.model.eval()
    if stop_signal.raised:  # saved; the caller must not mistake this for a finished run
        raise TrainingInterrupted(state["step"], total_steps, out, stop_signal.signum)
    return bundle


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during `train`: the checkpoint at `out` was saved at `step`; resume from it."""

    def __init__(self, step: int, total: int, out: Path, signum: int | None):
        super().__init__(f"interrupted at step {step} of {total}; checkpoint saved to {out}")
        self.step, self.total, self.out, self.signum = step, total, out, signum


class _StopOnSignal:
    """Turns SIGTERM/SIGINT into a flag so a killed run saves its checkpoint before exiting."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.raised = False
        self.signum: int | None = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():  # handlers only in the main thread
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.raised = True
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
