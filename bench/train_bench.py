"""Training and sampling throughput on this machine; prints JSON.

    python bench/train_bench.py [--model models/moldesign-moses.pt] [--steps 15] [--batch 256]

- training molecules/s and tokens/s with padded (random) vs length-bucketed batches, same model;
- forward+backward FLOPs per molecule (counted with torch.utils.flop_counter) against the machine's
  peak: cores × 2 FMA units × 8 fp32 lanes × 2 FLOP × clock (AVX2, Zen3);
- sampling throughput: valid molecules/s for a batch of 1,000 prior samples at temperature 1.

Uses MOSES train molecules (data/moses) when prepared, else the committed sample.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from moldesign.model import checkpoint
from moldesign.chem import is_valid
from moldesign.config import ModelConfig
from moldesign.data import PropertyScaler, bucket_batches, encode_table, load_moses, load_sample
from moldesign.model.networks import CVAE
from moldesign.decoding.sampling import sample_prior
from moldesign.model.tokenizer import Vocabulary
from moldesign.training.loop import elbo_terms


def cpu_clock_ghz() -> float:
    """Max clock from sysfs when readable, else the current MHz from /proc/cpuinfo."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) / 1e6
    except OSError:
        with open("/proc/cpuinfo") as f:
            mhz = [float(l.split(":")[1]) for l in f if l.startswith("cpu MHz")]
        return max(mhz) / 1000 if mhz else float("nan")


def time_steps(model, opt, data, batch_size, bucketed, steps, seed=0):
    rng = np.random.default_rng(seed)
    batches = bucket_batches(data.lengths, batch_size, rng, bucketed)[: steps + 2]
    n_mol = n_tok = n_pad = 0
    for i, idx in enumerate(batches):
        if i == 2:  # two warm-up steps
            t0 = time.perf_counter()
        L = int(data.lengths[idx].max())
        ids = torch.from_numpy(data.ids[idx, :L])
        cond = torch.from_numpy(data.cond[idx])
        recon, kl, _ = elbo_terms(model, ids, cond, 0.1)
        loss = recon + 0.5 * kl.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            n_mol += len(idx)
            n_tok += int(data.lengths[idx].sum())
            n_pad += len(idx) * L
    dt = time.perf_counter() - t0
    return {"molecules_per_s": n_mol / dt, "tokens_per_s": n_tok / dt, "padding_fraction": 1 - n_tok / n_pad}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/moldesign-moses.pt")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    try:
        table = load_moses("train").sample(n=20000, random_state=0)
        source = "MOSES train (20,000 random)"
    except Exception:
        table = load_sample()
        source = "committed sample"
    if os.path.exists(args.model):
        bundle = checkpoint.load(args.model)
        cfg, vocab, scaler = bundle.config, bundle.vocab, bundle.scaler
    else:
        bundle, vocab, scaler = None, Vocabulary.build(table["smiles"]), PropertyScaler.fit(table)
        cfg = ModelConfig(vocab_size=len(vocab))
    data, _ = encode_table(table, vocab, scaler, cfg.max_len)

    model = CVAE(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
              "data": source, "batch_size": args.batch, "parameters": sum(p.numel() for p in model.parameters()),
              "model_config": {k: v for k, v in cfg.__dict__.items()}}
    result["train_padded"] = time_steps(model, opt, data, args.batch, False, args.steps)
    result["train_bucketed"] = time_steps(model, opt, data, args.batch, True, args.steps)
    result["bucketed_speedup"] = result["train_bucketed"]["molecules_per_s"] / result["train_padded"]["molecules_per_s"]

    # FLOPs of one forward+backward over a batch of mean length, per molecule
    L = int(round(data.lengths.mean()))
    idx = np.where(data.lengths == L)[0][:64]
    ids, cond = torch.from_numpy(data.ids[idx, :L]), torch.from_numpy(data.cond[idx])
    with FlopCounterMode(display=False) as fc:
        recon, kl, _ = elbo_terms(model, ids, cond, 0.0)
        (recon + kl.sum()).backward()
    flops_per_mol = fc.get_total_flops() / len(idx)
    ghz = cpu_clock_ghz()
    peak = os.cpu_count() * 2 * 8 * 2 * ghz * 1e9  # cores × 2 FMA pipes × 8 fp32 lanes × 2 FLOP/FMA × Hz
    achieved = flops_per_mol * result["train_bucketed"]["molecules_per_s"]
    result["flops"] = {"train_flops_per_molecule": flops_per_mol, "mean_tokens": L, "clock_ghz": ghz,
                       "peak_flops": peak, "achieved_flops": achieved, "fraction_of_peak": achieved / peak}

    if bundle is not None:
        t0 = time.perf_counter()
        samples, _ = sample_prior(bundle, 1000, seed=0, temperature=1.0)
        dt = time.perf_counter() - t0
        n_valid = sum(is_valid(s) for s in samples)
        result["sampling"] = {"batch": 1000, "seconds": dt, "valid": n_valid, "valid_molecules_per_s": n_valid / dt}
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
