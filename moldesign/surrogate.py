"""Latent surrogate: an MLP [z, c] → (mw, logp, hbd, hba, tpsa, qed, sa), fit on encoded molecules.

Used by `optimize` to climb property gradients in the decoder's input space (Gómez-Bombarelli et
al. 2018 trained a property predictor jointly with the VAE; here it is fit afterwards on a trained
model, so the VAE is untouched). Targets are computed with RDKit (chem.compute_table) and
standardized; the network predicts in standardized units and `forward` returns raw units.

Why [z, c] and not z alone: in a conditional VAE the five properties reach the decoder as the
condition c, so the encoder has no reason to store them in z, and a z-only regressor explains
little of them (held-out R² 0.1-0.5 on the first shipped model). The decoder's molecule is a
function of (z, c), so the surrogate reads both: u = [z, scaler(c)] (Z + 5 inputs, c in the
checkpoint's standardized units). For the five conditioned properties it learns "≈ c", which is
true as far as the decoder honours its condition; QED and SA it learns from both parts.
`fit_surrogate` therefore also reports `r2_decoded`: how well the prediction at (μ, c) matches the
RDKit properties of what the decoder actually emits there, the number that matters to `optimize`.

Training inputs are z ~ q(z|x) = μ + σ·ε, resampled every epoch, not μ alone: the optimizer walks
off the encoded points, and the noise makes the regressor smooth over the region the decoder was
trained on. c is the molecule's own (exact) properties. Held-out R² is measured on μ of molecules
never seen in fitting.

Stored in the checkpoint as `surrogate_config` (plain dict: sizes, target names, mean/std,
metrics) and `surrogate_state_dict` (tensors), so `torch.load(weights_only=True)` still works.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from .chem import PROPERTIES, SCORES

TARGETS: tuple[str, ...] = PROPERTIES + SCORES  # the 7 predicted properties, in column order
SURROGATE_VERSION = 2  # 2: input [z, scaled c]; version 1 (z only) is not read: refit it


class Surrogate(nn.Module):
    """MLP (B, Z + C) → (B, T) raw-unit predictions of TARGETS; input u = [z, scaled condition]."""

    def __init__(self, latent_dim: int, cond_dim: int = len(PROPERTIES), hidden: Sequence[int] = (256, 256),
                 targets: Sequence[str] = TARGETS, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, metrics: dict | None = None):
        super().__init__()
        self.latent_dim, self.cond_dim = int(latent_dim), int(cond_dim)
        self.hidden, self.targets = tuple(int(h) for h in hidden), tuple(targets)
        self.metrics = dict(metrics or {})
        layers, d = [], self.input_dim
        for h in self.hidden:
            layers += [nn.Linear(d, h), nn.SiLU()]  # smooth activation: its gradients drive optimize
            d = h
        layers.append(nn.Linear(d, len(self.targets)))
        self.net = nn.Sequential(*layers)
        T = len(self.targets)
        # target scaling lives in the config (plain lists); buffers only move it with .to(device)
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * T, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * T, dtype=torch.float32),
                             persistent=False)

    @property
    def input_dim(self) -> int:
        return self.latent_dim + self.cond_dim

    def forward_scaled(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)  # (B, T) standardized

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u) * self.std + self.mean  # (B, T) raw units

    @torch.no_grad()
    def predict(self, u: np.ndarray) -> np.ndarray:
        """(n, Z + C) inputs [z, scaled c] → (n, T) raw predictions (numpy)."""
        dev = self.mean.device
        return self(torch.as_tensor(np.asarray(u, np.float32), device=dev)).cpu().numpy().astype(np.float64)

    def index(self, name: str) -> int:
        return self.targets.index(name)

    # ---- checkpoint hooks (see checkpoint.save / load)
    def config_dict(self) -> dict:
        return {"version": SURROGATE_VERSION, "latent_dim": self.latent_dim, "cond_dim": self.cond_dim,
                "hidden": list(self.hidden),
                "targets": list(self.targets), "mean": [float(x) for x in self.mean.cpu()],
                "std": [float(x) for x in self.std.cpu()], "metrics": self.metrics}

    @classmethod
    def from_state(cls, config: dict, state: dict) -> "Surrogate":
        from .checkpoint import CheckpointError  # local: checkpoint imports this module lazily too

        if config.get("version") != SURROGATE_VERSION:
            raise CheckpointError(f"surrogate format {config.get('version')!r}; this moldesign reads "
                                  f"{SURROGATE_VERSION} (refit it with `moldesign surrogate fit`)")
        s = cls(config["latent_dim"], config["cond_dim"], config["hidden"], config["targets"], config["mean"],
                config["std"], config.get("metrics"))
        s.load_state_dict(state)
        return s


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


def joint_input(bundle, z: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """Surrogate input u = [z, scaler(cond)]: z (n, Z), raw conditions (n, 5) → (n, Z + 5) float32."""
    return np.concatenate([np.asarray(z, np.float32), bundle.scaler.transform(cond)], axis=1)


def split_input(bundle, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of joint_input: (n, Z + 5) → z (n, Z) float32, raw conditions (n, 5)."""
    Z = bundle.config.latent_dim
    return np.asarray(u[:, :Z], np.float32), bundle.scaler.inverse(u[:, Z:])


def training_targets(bundle, smiles: Sequence[str], workers: int = 1, progress: bool = False,
                     log: Callable[[str], None] = lambda m: None):
    """Encodable canonical SMILES and their (n, 7) RDKit targets; reports what it leaves out."""
    from .chem import compute_table

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
    from .chem import scores_array
    from .sampling import canonical_mols, decode, encode, model_device

    t0 = time.time()
    smiles, y = training_targets(bundle, smiles, workers=workers, progress=progress, log=log)
    n = len(smiles)
    if n < 10:
        from .sampling import DesignInputError

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
