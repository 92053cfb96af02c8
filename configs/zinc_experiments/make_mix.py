# `PYTHONPATH=. python configs/zinc_experiments/make_mix.py` (from the repository root; needs `moldesign data zinc250k` and the MOSES wheel in data/moses/)
# ZINC250k train (standardized) + an equal number of MOSES train molecules, one CSV; then the
# property table is computed once (2 workers) into the training cache, keyed by the file checksum.
import numpy as np, pandas as pd
from pathlib import Path
from moldesign.data import load_zinc250k, read_moses_split_raw, find_or_download_molsets_wheel, load_training_table, cache_dir
zinc = load_zinc250k("train")["smiles"].tolist()
wheel = Path("data/moses/molsets-0.3.1-py3-none-any.whl")
moses = read_moses_split_raw(wheel, "train")
rng = np.random.default_rng(6)
pick = rng.choice(len(moses), size=len(zinc), replace=False)
smi = zinc + [moses[i] for i in pick]
out = Path("runs/s6/zinc_moses_mix.csv")
pd.DataFrame({"smiles": smi}).to_csv(out, index=False)
t = load_training_table(out, workers=2, cache_dir=cache_dir("tables"))
print(len(smi), len(t))
