"""Lead optimization in the decoder's input space, every decoded molecule scored by RDKit (the
oracle): surrogate-gradient ascent (Gómez-Bombarelli et al. 2018, §4, adapted to a conditional
VAE), CMA-ES with RDKit scoring (MolMIM, Reidenbach et al. 2023) and a random-direction baseline;
one start, or a batch of starts searched together.

The decoder reads u = [z, c]: the latent z and the condition c (five properties, in the scaler's
standardized units). Both decide the molecule, so both may move (`condition="optimize"`), or c is
held at the seed's properties and z moves alone (`condition="seed"`), or z is held at μ and only
c moves (`condition="only"`: "the same molecule, but with a higher requested LogP"). c is kept inside the
training range; a seed whose own c lies outside it is clipped with a warning (never silently).

Objective (objective.Objective): a weighted sum of scored columns in their natural units, minus
squared target errors in training-std units:

    J = Σ_k w_k·x_k − Σ_t ((x_t − target_t)/std_t)²

with columns x_k in COLUMNS: mw logp hbd hba tpsa qed sa (chem.py), plogp (normalized penalized
logP, chem.penalized_logp), plogp_raw (logP − SA, chem.plogp_raw) and similarity (Tanimoto to the
start, Morgan r=2, 2048 bits). `--maximize P` is w_P = +1, `--minimize P` is w_P = −1,
`--objective '1.0*logp - 1.0*sa'` sets the weights (|w| ≤ 1e6: larger ones overflow J to inf).
J is what the summary reports (natural units: `--maximize qed` reports QED) and is always
computed by RDKit on the decoded molecule.

Oracle calls (oracle.Oracle): one per distinct valid decoded molecule scored with RDKit (a molecule
decoded again is looked up, not rescored; invalid decodes cost a decode, not a call). `budget`
caps them per start. `min_similarity` S is a constraint: a molecule is feasible when similarity
≥ S, only feasible molecules are proposed (`best`), and every method steers by it (below).

Methods (each a step-wise state machine for one start, search.StartSearch: `ask()` → the points
to decode next or None when done, `tell(rows)` ← the oracle's rows of their decodes):
- gradient (gradient.GradientSearch): J's surrogate-predictable part is a linear functional a·ŝ(u)
  of the surrogate's predictions (plogp → logp/σ_logP − sa/σ_SA; the ring term and similarity are
  not predicted; a similarity weight acts through the proxy −‖u − u₀‖). Chains climb
  a·ŝ(u)/‖a∘σ‖ + λ·log N(u;0,I) by normalized steps of `step_size`: chain 0 from the seed's own
  point u₀ = [μ, c_seed], the others from [μ + sigma·ε, c_seed] (with condition="only": [μ, c_seed
  + sigma·ε]). Each step's points are decoded and scored; a chain whose molecule falls below S
  returns to its last feasible point with half the step (a trust region); after 4 halvings it
  restarts from a new neighbour of u₀.
- cmaes (search.CmaesSearch): CMA-ES (the `cma` package) over the moving coordinates of u, started
  at u₀ with initial spread `sigma` per z coordinate and `condition_sigma` per condition coordinate
  (each ≥ 1e-6), population `chains`, `steps` generations; fitness is RDKit's J for feasible
  molecules, below every feasible one for infeasible (ranked by similarity) and invalid ones.
- random_baseline: the gradient run's own distances from u₀, in uniformly random directions of
  the same space, scored by the same oracle rules: only the directions differ.

Shared by both methods:
- `samples` K: each latent point is decoded K times, greedily and K − 1 times at `temperature`;
  a point's fitness (CMA-ES) or feasibility (gradient trust region) is that of its best decode.
  A decoder whose greedy reconstruction is weak maps μ of a start to another molecule; its
  samples around μ still include the start and close analogues, so proposals stay similar.
- `sigma_units`: "prior" counts sigma and step_size for z in prior std units (1 per coordinate);
  "posterior" in the start's posterior σ per coordinate (q(z|start)), the latent's own scale of
  "still this molecule" (the ZINC model's σ ranges 0.01–1 across coordinates).
- `fill_budget`: when a run ends (steps/generations done, or CMA-ES's own stop), another starts
  at the best feasible point so far, until `budget` oracle calls are spent; it stops early when a
  run finds nothing new or decodes reach MAX_DECODES_PER_CALL × budget.
- `similarity_penalty` W (CMA-ES): 0 keeps the constraint hard inside the fitness (above); W > 0
  scores an infeasible molecule −J + W·(S − similarity), so a good one just outside can lead.
  Only feasible molecules are ever proposed either way.
- `stop_at`: a start ends after the first step (generation) that decodes a feasible new molecule
  with J ≥ stop_at ("a QED ≥ 0.9 analogue of each lead is enough": the QED benchmark's success,
  which QMO also stops at). Its rows are the first rows of the same search without stop_at.
- `prescreen` K (CMA-ES; needs the latent surrogate): each generation samples K × population
  candidates and decodes only the population the surrogate predicts best (J's predictable part,
  Objective.score_numpy); CMA-ES is told every candidate, the undecoded ones ranked last in the
  surrogate's order, and keeps its parents (μ = population / 2) among the decoded. The decodes and
  oracle calls per generation are those of K = 1; the surrogate costs microseconds a point.
- `guides` (guides.Guides, CMA-ES; `--guide FILE`): molecules that already have the wanted
  property. A start's first step decodes points on the lines from u₀ towards its nearest guides'
  points; the first run starts at the best feasible one. Each restart first walks the same way
  from the best feasible point towards the guides nearest to the best molecule (not walked to
  before). Guides are never proposals (not new).

Batches (batch.optimize_many; `optimize` is the batch of one): up to MAX_ACTIVE starts are searched
at once, each with its own state (search, oracle cache and budget, rng = default_rng(seed), CMA-ES
random stream, torch generator). The points of all active starts share ONE decoder stream
(points.PointStream: every decoder step advances the rows of all of them; greedy decoding is
row-independent, so a start's strings do not depend on its neighbours); a start whose rows are
decoded is scored at once (the RDKit columns of the molecules new in that step in one pass,
optionally in a worker pool; similarity and J per start), told its rows, and pushes its next
points while the others decode on. A start's rows are identical alone and in any batch. Sampled decodes (`samples` > 1) are one
decode call per start with its own generator (a shared generator would tie a start's draws to its
neighbours'). The gradient step and the surrogate's predictions stay per start, for the same reason.
"""
from __future__ import annotations

from .batch import MAX_ACTIVE, SETTINGS, BatchStats, Settings, new_search, optimize, optimize_many, run_searches
from .gradient import GradientSearch, latent_paths, random_baseline
from .guides import GUIDE_STEPS, GUIDES_PER_START, Guides
from .objective import COLUMNS, MAX_WEIGHT, SURROGATE_LINEAR, Objective, target_stds
from .oracle import MOLECULE_COLUMNS, Oracle, molecule_columns, score_many
from .points import decode_points, point_fitness, point_rows, score_points
from .results import CURVE_COLUMNS, OptimizeResult, best_so_far, finish
from .search import CmaesSearch, StartSearch
from .settings import (CONDITIONS, DEFAULT_CHAINS, DEFAULT_CONDITION_SIGMA, DEFAULT_METHOD, DEFAULT_PRIOR_WEIGHT,
                       DEFAULT_PRESCREEN, DEFAULT_SAMPLES, DEFAULT_SIGMA, DEFAULT_SIGMA_UNITS, DEFAULT_STEP_SIZE, DEFAULT_STEPS,
                       DEFAULT_TEMPERATURE, MAX_DECODES_PER_CALL, MAX_HALVINGS, MAX_SAMPLES, METHODS, MIN_SIGMA,
                       MISSING_SURROGATE, SIGMA_UNITS, check_settings, require_surrogate)
from .space import Space, posterior_sd, seed_point, step_scale

__all__ = [
    "optimize", "optimize_many", "run_searches", "new_search", "Settings", "SETTINGS", "BatchStats", "MAX_ACTIVE",
    "Guides", "GUIDES_PER_START", "GUIDE_STEPS",
    "StartSearch", "CmaesSearch", "GradientSearch", "latent_paths", "random_baseline", "Objective", "COLUMNS",
    "MAX_WEIGHT", "SURROGATE_LINEAR", "target_stds", "Oracle", "MOLECULE_COLUMNS", "molecule_columns", "score_many",
    "decode_points", "point_fitness", "point_rows", "score_points", "OptimizeResult", "finish", "best_so_far",
    "CURVE_COLUMNS", "Space", "seed_point", "posterior_sd", "step_scale", "check_settings", "require_surrogate",
    "CONDITIONS", "METHODS", "SIGMA_UNITS", "DEFAULT_CHAINS", "DEFAULT_CONDITION_SIGMA", "DEFAULT_METHOD",
    "DEFAULT_PRIOR_WEIGHT", "DEFAULT_PRESCREEN", "DEFAULT_SAMPLES", "DEFAULT_SIGMA", "DEFAULT_SIGMA_UNITS", "DEFAULT_STEP_SIZE",
    "DEFAULT_STEPS", "DEFAULT_TEMPERATURE", "MAX_DECODES_PER_CALL", "MAX_HALVINGS", "MAX_SAMPLES", "MIN_SIGMA",
    "MISSING_SURROGATE",
]
