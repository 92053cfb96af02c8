"""Guide molecules for the optimization tasks (issue 28; `optimize --guide FILE`): the ZINC250k
*training* molecules whose --property is at least --min, written as a .smi; prints a JSON line
with the counts and the property's quantiles over all training molecules.

    python bench/make_guides.py [--zinc data/zinc250k/train.parquet] [--property qed] [--min 0.9] -o runs/guides_qed090.smi
    python bench/make_guides.py --property plogp_raw --min 3.0 -o runs/guides_plogp3.smi
    python bench/make_guides.py --zinc data/moses/train.parquet -o runs/guides_moses_qed090.smi

--zinc: any table with a smiles column (`moldesign data zinc250k` or `moldesign data moses` writes
them); MOSES train (1.58M molecules, ~25 minutes) gives 251,054 molecules with QED ≥ 0.9.

--property: qed, or plogp_raw (logP − SA, the units of JT-VAE's penalized-logP task). The
benchmarks' starts come from ZINC250k test (QED task) and JT-VAE's validation split (plogP
task), so no start is among its own guides' source. Takes ~5 minutes (RDKit on 220k molecules).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from moldesign.chem import mol_from_smiles, plogp_raw, qed, quiet_rdkit

PROPERTIES = {"qed": qed, "plogp_raw": plogp_raw}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zinc", default="data/zinc250k/train.parquet")
    p.add_argument("--property", choices=sorted(PROPERTIES), default="qed")
    p.add_argument("--min", type=float, default=0.9, help="keep molecules with property >= this")
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    smiles = pd.read_parquet(args.zinc, columns=["smiles"])["smiles"].tolist()
    score = PROPERTIES[args.property]
    with quiet_rdkit():
        values = np.array([score(mol_from_smiles(s)) for s in smiles])
    keep = [s for s, v in zip(smiles, values) if v >= args.min]
    Path(args.out).write_text("\n".join(keep) + "\n")
    q = {str(k): round(float(np.quantile(values, k)), 3) for k in (0.5, 0.9, 0.95, 0.99)}
    print(json.dumps({"source": args.zinc, "molecules": len(smiles), "property": args.property, "min": args.min,
                      "quantiles": q, "guides": len(keep), "out": args.out}))


if __name__ == "__main__":
    main()
