"""Per-length NLL in train mode vs eval mode: does a model lean on its training batches' statistics?

    python bench/length_nll.py --model runs/m3fix/input/model.pt [--lengths 28,34,40,46,52] [--random]

For each canonical length, 256 ZINC250k training molecules of that length form one batch (as a
bucketed training batch does); the teacher-forced NLL of the canonical strings (nats/molecule, at μ)
is measured with the encoder's BatchNorm in train mode (that batch's statistics) and in eval mode
(the running statistics). --random: the encoder reads one random spelling per molecule (RDKit), as a
`train.randomize = "input"` model was trained to. Equal numbers mean the model does not depend on
which molecules share its batch (issue 27: the leaky input run gave 10.5 vs 31.9 at 28 tokens).
Prints JSON.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import torch
from rdkit import Chem

from moldesign.chem import properties_array
from moldesign.decoding.sampling import encode_ids
from moldesign.model import checkpoint
from moldesign.training.loop import elbo_terms


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--train", default="data/zinc250k/train.parquet")
    p.add_argument("--lengths", default="28,34,40,46,52")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--random", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    b = checkpoint.load(args.model)
    by_len: dict[int, list[str]] = {}
    for s in pd.read_parquet(args.train)["smiles"].tolist()[:30000]:
        by_len.setdefault(len(b.vocab.encode(s)), []).append(s)
    rows = []
    for n in (int(x) for x in args.lengths.split(",")):
        mols = by_len.get(n, [])[: args.batch]
        if not mols:
            continue
        ids, _ = encode_ids(b, mols)
        enc = None
        if args.random:
            rnd = [Chem.MolToRandomSmilesVect(Chem.MolFromSmiles(s), 1, randomSeed=i)[0] for i, s in enumerate(mols)]
            enc, _ = encode_ids(b, rnd)
        cond = torch.from_numpy(b.scaler.transform(properties_array(mols)))
        out = {"length": n, "molecules": len(mols)}
        for mode in ("train", "eval"):
            b.model.train(mode == "train")
            with torch.no_grad():
                torch.manual_seed(0)
                out[f"nll_{mode}_mode"] = round(elbo_terms(b.model, ids, cond, 0.0, enc_ids=enc)[0].item(), 2)
        rows.append(out)
    print(json.dumps({"model": args.model, "random_input": args.random, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
