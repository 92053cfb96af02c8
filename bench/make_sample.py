"""Write data/moses_sample.csv: 4,000 MOSES train + 1,000 MOSES test molecules with properties.

Run after `moldesign data moses`. The draw is fixed (numpy default_rng(0)).
"""
import numpy as np
import pandas as pd

from moldesign.data import SAMPLE_PATH, load_moses


def main() -> None:
    rng = np.random.default_rng(0)
    parts = []
    for split, n in (("train", 4000), ("test", 1000)):
        table = load_moses(split)
        parts.append(table.iloc[np.sort(rng.choice(len(table), n, replace=False))].assign(split=split))
    sample = pd.concat(parts, ignore_index=True)
    sample.to_csv(SAMPLE_PATH, index=False, float_format="%.4f")
    print(f"wrote {len(sample)} rows to {SAMPLE_PATH}")


if __name__ == "__main__":
    main()
