"""Data-pipeline throughput on this machine; prints JSON.

    python bench/data_bench.py [--n 20000]

- RDKit property throughput (parse + canonical SMILES + 5 properties) with 1 and 2 workers on n
  MOSES train molecules (raw SMILES from the molsets wheel, as `moldesign data moses` sees them);
- tokenizer throughput (tokens/s and SMILES/s) over the same molecules;
- vocabulary coverage: fraction of MOSES train encodable with a vocabulary built from a 100k
  subset, and max/mean token length over all of MOSES train.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from moldesign.chem import compute_table
from moldesign.data import DEFAULT_DATA_DIR, find_or_download_molsets_wheel, load_moses, read_moses_split_raw
from moldesign.model.tokenizer import Vocabulary, tokenize


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()

    raw = read_moses_split_raw(find_or_download_molsets_wheel(DEFAULT_DATA_DIR), "train")
    rng = np.random.default_rng(0)
    subset = [raw[i] for i in rng.choice(len(raw), args.n, replace=False)]
    result: dict = {"n": args.n, "cores": os.cpu_count()}

    for workers in (1, 2):
        t0 = time.perf_counter()
        compute_table(subset, workers=workers)
        result[f"properties_mol_per_s_{workers}_workers"] = round(args.n / (time.perf_counter() - t0), 1)

    t0 = time.perf_counter()
    n_tokens = sum(len(tokenize(s)) for s in subset)
    dt = time.perf_counter() - t0
    result["tokenizer_smiles_per_s"] = round(args.n / dt, 1)
    result["tokenizer_tokens_per_s"] = round(n_tokens / dt, 1)

    train = load_moses("train")["smiles"].tolist()
    lengths = np.array([len(tokenize(s)) + 2 for s in train])  # + <bos>/<eos>
    vocab = Vocabulary.build(train[:100_000])
    covered = sum(all(t in vocab.index for t in tokenize(s)) for s in train)
    result["vocab_size_from_100k"] = len(vocab)
    result["vocab_coverage_moses_train"] = covered / len(train)
    result["vocab_size_full_train"] = len(Vocabulary.build(train))
    result["token_length_with_bos_eos"] = {"max": int(lengths.max()), "mean": round(float(lengths.mean()), 2),
                                           "p99": float(np.percentile(lengths, 99))}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
