"""What is fitted on a trained model's encodings and stored beside it in the checkpoint: the
Gaussian-mixture prior over posterior means (model/prior.py holds its parameters) and the latent
surrogate [z, c] → properties (model/surrogate.py holds the network).

Here, not in model/: fitting encodes and decodes molecules (decoding/), which itself reads the
checkpoint, so the stored data and the procedures that produce it live apart and every import
points down."""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..chem import PROPERTIES
from ..errors import DesignInputError
from ..model.prior import GaussianMixturePrior, PriorError
from ..model.surrogate import TARGETS, Surrogate, joint_input


def fit_gmm(mu: np.ndarray, n_components: int = 16, seed: int = 0, reg_covar: float = 1e-4) -> GaussianMixturePrior:
    """Fit a full-covariance Gaussian mixture to posterior means μ (n, Z)."""
    from sklearn.mixture import GaussianMixture

    mu = np.asarray(mu, dtype=np.float64)
    if len(mu) < 2 * n_components:
        raise PriorError(f"need at least {2 * n_components} molecules to fit {n_components} components, got {len(mu)}")
    gm = GaussianMixture(n_components=n_components, covariance_type="full", reg_covar=reg_covar,
                         random_state=seed, max_iter=200).fit(mu)
    return GaussianMixturePrior(gm.weights_, gm.means_, gm.covariances_, len(mu), seed)


def fit_prior(bundle, smiles: Sequence[str], n_components: int = 16, seed: int = 0) -> tuple[GaussianMixturePrior, dict]:
    """Encode `smiles` (those the model can encode; the others are left out and counted) and fit
    the GMM on their μ; returns the prior and a small report."""
    from ..chem import try_mol
    from ..decoding.sampling import encodable, encode

    t0 = time.time()
    # encodable: tokens and length fit the model; try_mol: RDKit reads it (else its properties,
    # the encoder's condition, are NaN)
    ok = [s for s in smiles if isinstance(s, str) and encodable(bundle, s) and try_mol(s) is not None]
    mu, _ = encode(bundle, ok)
    gmm = fit_gmm(mu, n_components, seed)
    return gmm, {"n_fit": len(mu), "n_left_out": len(smiles) - len(ok), "components": n_components, "seconds": round(time.time() - t0, 1),
                 "mu_norm_mean": float(np.linalg.norm(mu, axis=1).mean()),
                 "normal_norm_mean": float(np.sqrt(mu.shape[1]))}


def r2_scores(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Coefficient of determination per column: 1 − SS_res / SS_tot (NaN for a constant column)."""
    out = {}
    for j, k in enumerate(names):
        ss_tot = float(((y[:, j] - y[:, j].mean()) ** 2).sum())
        ss_res = float(((y[:, j] - pred[:, j]) ** 2).sum())
        out[k] = round(1.0 - ss_res / ss_tot, 4) if ss_tot > 0 else float("nan")
    return out


def mae_scores(y: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Mean absolute error per column, rounded to 4 decimals."""
    return {k: round(float(np.abs(y[:, j] - pred[:, j]).mean()), 4) for j, k in enumerate(names)}


def training_targets(bundle, smiles: Sequence[str], workers: int = 1, progress: bool = False,
                     log: Callable[[str], None] = lambda m: None):
    """Encodable canonical SMILES and their (n, 7) RDKit targets; reports what it leaves out."""
    from ..chem import compute_table

    table = compute_table(list(smiles), with_scores=True, workers=workers, progress=progress, desc="targets")
    n_invalid = int((~table["valid"]).sum())
    table = table[table["valid"]]
    ok = []
    for s in table["smiles"]:
        try:
            bundle.vocab.encode(s, max_len=bundle.config.max_len)
            ok.append(True)
        except (KeyError, ValueError):
            ok.append(False)
    ok = np.array(ok, dtype=bool)
    if n_invalid or (~ok).sum():
        log(f"surrogate: left out {n_invalid} invalid and {int((~ok).sum())} unencodable molecules "
            f"(tokens outside the vocabulary or longer than max_len)")
    table = table[ok]
    return table["smiles"].tolist(), table[list(TARGETS)].to_numpy(dtype=np.float64)


def fit_surrogate(bundle, smiles: Sequence[str], hidden: Sequence[int] = (256, 256), epochs: int = 60,
                  batch_size: int = 256, lr: float = 2e-3, test_fraction: float = 0.1, noise: float = 1.0, seed: int = 0,
                  workers: int = 1, progress: bool = False,
                  log: Callable[[str], None] = lambda m: None) -> tuple[Surrogate, dict]:
    """Fit the surrogate on `smiles` (encoded with the bundle's encoder) and return it with a report:
    {"r2": {target: held-out R² at (μ, c)}, "r2_fit": {same on the fitting molecules}, "mae": {held-out
    mean absolute error}, "r2_decoded"/"mae_decoded": {the prediction at held-out (μ, c) against the
    RDKit properties of the greedy decode there}, "decoded_valid", "n_train", "n_test", "seconds", ...}.

    `noise` scales the posterior draw used as input, z = μ + noise·σ·ε (1 = a draw from q(z|x),
    0 = μ only). The bundle is not modified; set `bundle.surrogate` and save it to keep the result.
    """
    from ..chem import canonical_mols, scores_array
    from ..decoding.sampling import decode, encode, model_device

    t0 = time.time()
    smiles, y = training_targets(bundle, smiles, workers=workers, progress=progress, log=log)
    n = len(smiles)
    if n < 10:
        raise DesignInputError(f"need at least 10 encodable molecules to fit the surrogate, got {n}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = max(2, int(round(test_fraction * n)))
    test, train = perm[:n_test], perm[n_test:]
    cond = y[:, : len(PROPERTIES)]  # (n, 5) the molecules' own RDKit properties = their decoder condition
    mu, logvar = encode(bundle, smiles, props=cond)  # (n, Z) each
    u_mu = joint_input(bundle, mu, cond)  # (n, Z + 5): [μ, scaled c]
    log(f"surrogate: encoded {n} molecules ({len(train)} fit, {n_test} held out) in {time.time() - t0:.1f} s")

    mean, std = y[train].mean(0), y[train].std(0)
    std[std == 0] = 1.0
    device = model_device(bundle)
    torch.manual_seed(seed)
    model = Surrogate(bundle.config.latent_dim, len(PROPERTIES), hidden, TARGETS, mean.tolist(), std.tolist()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    Z = mu.shape[1]
    mu_tr, sig_tr, c_tr = t(mu[train]), t(noise * np.exp(0.5 * logvar[train])), t(u_mu[train, Z:])
    y_tr = t((y[train] - mean) / std)
    gen = torch.Generator(device=device).manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=gen, device=device)
        for i in range(0, len(train), batch_size):
            idx = order[i : i + batch_size]
            eps = torch.randn(mu_tr[idx].shape, generator=gen, device=device)
            u = torch.cat([mu_tr[idx] + sig_tr[idx] * eps, c_tr[idx]], dim=1)  # (b, Z + 5): z ~ q(z|x), exact c
            loss = nn.functional.mse_loss(model.forward_scaled(u), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    pred = model.predict(u_mu[test])
    # what optimize relies on: does the prediction at (μ, c) describe the molecule decoded there?
    _, mols = canonical_mols(decode(bundle, mu[test], cond[test], temperature=0.0))
    ok = np.array([m is not None for m in mols])
    dec = scores_array(mols)[ok]  # (n valid, T)
    report = {
        "inputs": "z ~ q(z|x) and the scaled condition c",
        "r2": r2_scores(y[test], pred, TARGETS),
        "r2_fit": r2_scores(y[train], model.predict(u_mu[train]), TARGETS),  # vs r2: how much it overfits
        "mae": mae_scores(y[test], pred, TARGETS),
        "decoded_valid": round(float(ok.mean()), 4),
        "r2_decoded": r2_scores(dec, pred[ok], TARGETS) if ok.sum() >= 2 else None,
        "mae_decoded": mae_scores(dec, pred[ok], TARGETS) if ok.any() else None,
        "n_train": int(len(train)), "n_test": int(n_test), "epochs": epochs, "hidden": list(model.hidden),
        "noise": noise,
        "seconds": round(time.time() - t0, 1),
    }
    model.metrics = {k: report[k] for k in ("r2", "mae", "r2_decoded", "decoded_valid", "n_train", "n_test")}
    return model, report
