# `PYTHONPATH=. python configs/zinc_experiments/make_mix.py` (from the repository root; needs `moldesign data zinc250k`; the MOSES wheel is found in data/moses/ or downloaded)
# ZINC250k train (standardized) + an equal number of MOSES train molecules, one CSV; then the
# property table is computed once (2 workers) into the training cache, keyed by the file checksum.
import numpy as np, pandas as pd
from pathlib import Path
from moldesign.data import (DEFAULT_DATA_DIR, cache_dir, find_or_download_molsets_wheel, load_training_table, load_zinc250k,
                            read_moses_split_raw)
zinc = load_zinc250k("train")["smiles"].tolist()
moses = read_moses_split_raw(find_or_download_molsets_wheel(DEFAULT_DATA_DIR), "train")
rng = np.random.default_rng(6)
pick = rng.choice(len(moses), size=len(zinc), replace=False)
smi = zinc + [moses[i] for i in pick]
out = Path("runs/s6/zinc_moses_mix.csv")  # the path ft_mix_wd01.toml trains on
out.parent.mkdir(parents=True, exist_ok=True)
pd.DataFrame({"smiles": smi}).to_csv(out, index=False)
t = load_training_table(out, workers=2, cache_dir=cache_dir("tables"))
print(len(smi), len(t))
