"""Guide molecules for the QED task (issue 28; `optimize --guide FILE`): the ZINC250k *training*
molecules with QED ≥ --min-qed, written as a .smi; prints a JSON line with the counts.

    python bench/make_guides.py [--zinc data/zinc250k/train.parquet] [--min-qed 0.9] -o runs/guides_qed090.smi

The benchmark's starts come from ZINC250k test (batch_optimize_bench.py's default), so no start is
among its own guides' source. Takes ~5 minutes (RDKit's QED of 220k molecules).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from moldesign.chem import mol_from_smiles, qed, quiet_rdkit


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zinc", default="data/zinc250k/train.parquet")
    p.add_argument("--min-qed", type=float, default=0.9)
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    smiles = pd.read_parquet(args.zinc, columns=["smiles"])["smiles"].tolist()
    with quiet_rdkit():
        keep = [s for s in smiles if qed(mol_from_smiles(s)) >= args.min_qed]
    Path(args.out).write_text("\n".join(keep) + "\n")
    print(json.dumps({"source": args.zinc, "molecules": len(smiles), "min_qed": args.min_qed, "guides": len(keep),
                      "out": args.out}))


if __name__ == "__main__":
    main()
