"""interpolate: the path from one molecule's latent to another's (slerp or linear), the condition
moving linearly between their properties, greedily decoded at each step; every step is kept and
the filters only mark it. Each end's latent is the one of PATH_ANCHOR draws of its posterior (μ first)
that decodes back to the molecule where one does (encoding.anchor_latents), so that the path
begins and ends at the inputs; μ alone decodes to another molecule for ~40% of ZINC."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..chem import canonical_mols, scores_array, tanimoto_to
from ..decoding.sampling import decode
from ..errors import DesignInputError
from ..model.checkpoint import Bundle
from ..model.surrogate import TARGETS
from ..screening.screen import explain_invalid
from .common import check_beam, molecule, molecule_filter
from .encoding import anchor_latents
from .filters import Sanity
from .latent import interpolate_latents
from .rules import MAX_PATH_ANCHOR, MAX_PATH_STEPS, PATH_ANCHOR, check_integer

# Ends written back exactly with PATH_ANCHOR draws per end (bench/anchor_bench.py, shipped model):
# 200 ZINC test molecules 0.635 from μ, 0.78 with 32 draws, 0.805 with 128; 22 drugs 0.455, 0.591,
# 0.682. 32 costs ~0.2 s per end; aspirin's end becomes aspirin (Tamiflu's stays near, 0.25)


def interpolate(bundle: Bundle, a: str, b: str, steps: int = 10, method: str = "slerp", *, keep: str | None = None,
                filters: Sequence[str] | None = None, sanity: bool | Sanity = True, constrained: bool = True,
                beam: int = 0, anchor: int = PATH_ANCHOR) -> pd.DataFrame:
    """Designer.interpolate (its docstring lists the columns)."""
    check_beam(beam)
    check_integer("--anchor", anchor, lo=0, hi=MAX_PATH_ANCHOR)
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 2:
        raise DesignInputError(f"--steps must be at least 2 (both ends), got {steps!r}")
    check_integer("--steps", steps, hi=MAX_PATH_STEPS)  # the CLI's bound: steps=10**6 ran on
    mfilter = molecule_filter(keep, filters, sanity)
    sa, sb = molecule(bundle, a), molecule(bundle, b)
    props = np.stack([sa.props, sb.props])  # (2, 5)
    # (2, Z): the ends' latents, decoded as the path is (greedy or beam, same mask); a fixed rng, so
    # the path does not depend on --seed
    ends, _ = anchor_latents(bundle, [sa, sb], anchor, np.random.default_rng(0), constrained=constrained, beam=beam)
    alphas, z = interpolate_latents(ends[0], ends[1], steps, method)
    cond = (1 - alphas[:, None]) * props[0] + alphas[:, None] * props[1]  # (K, 5)
    strings = decode(bundle, z, cond, temperature=0.0, constrained=constrained, beam=beam)
    canon, mols = canonical_mols(strings)
    df = pd.DataFrame({"step": np.arange(steps), "alpha": alphas,
                       "smiles": [c if c else s for c, s in zip(canon, strings)],
                       "valid": [c is not None for c in canon],
                       "error": ["" if c is not None else "invalid decode: " + explain_invalid(s)
                                 for c, s in zip(canon, strings)]})
    df[list(TARGETS)] = scores_array(mols)
    df["similarity_a"] = tanimoto_to(sa.mol, mols)
    df["similarity_b"] = tanimoto_to(sb.mol, mols)
    df["duplicate"] = [i > 0 and canon[i] is not None and canon[i] == canon[i - 1] for i in range(steps)]
    df["passes"], df["failed_filters"] = mfilter.table_mask(df.assign(similarity=df["similarity_a"]), mols)
    df.attrs["ends"] = (sa, sb)
    return df
