"""The conditional VAE: ConvEncoder(x, c) → (μ, log σ²); GRUDecoder(z, c) → token logits.

Pure nn.Modules: no I/O, no RDKit. Shapes: B batch, L sequence length (with <bos>/<eos>),
V vocabulary, Z latent, P number of condition properties (scaled).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3  # fixed by tokenizer.SPECIAL_TOKENS


class ConvEncoder(nn.Module):
    """Embedding → 1D convolutions over the (fixed-length, padded) sequence → flatten → dense.

    As in Gómez-Bombarelli et al. the input is padded to max_len and flattened, so the dense layer
    sees where each motif sits, which helps exact reconstruction. The condition c joins before
    the dense layer: q(z | x, c).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.max_len = cfg.max_len
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        convs, c_in = [], cfg.embed_dim
        for c_out, k in zip(cfg.conv_channels, cfg.conv_kernels):
            convs.append(nn.Conv1d(c_in, c_out, k, padding="same"))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) for c in cfg.conv_channels)
        self.dense = nn.Linear(c_in * cfg.max_len + cfg.n_props, cfg.enc_hidden)
        self.mu = nn.Linear(cfg.enc_hidden, cfg.latent_dim)
        self.logvar = nn.Linear(cfg.enc_hidden, cfg.latent_dim)

    def forward(self, ids: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # ids (B, L) with L <= max_len; pad on the right to max_len with <pad>
        ids = F.pad(ids, (0, self.max_len - ids.shape[1]), value=PAD_ID)
        h = self.embed(ids).transpose(1, 2)  # (B, E, max_len)
        for conv, norm in zip(self.convs, self.norms):
            h = F.relu(norm(conv(h)))  # (B, C, max_len)
        h = torch.cat([h.flatten(1), cond], dim=1)  # (B, C*max_len + P)
        h = F.relu(self.dense(h))  # (B, H_enc)
        return self.mu(h), self.logvar(h)  # (B, Z) each


class GRUDecoder(nn.Module):
    """GRU language model over SMILES tokens, conditioned on [z, c].

    [z, c] sets the initial hidden state of every layer and is also fed at every step, concatenated
    to the token embedding, so the latent cannot be forgotten along a long sequence.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        zc = cfg.latent_dim + cfg.n_props
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD_ID)
        self.init_h = nn.Linear(zc, cfg.dec_hidden * cfg.dec_layers)
        self.gru = nn.GRU(cfg.embed_dim + zc, cfg.dec_hidden, cfg.dec_layers, batch_first=True,
                          dropout=cfg.dec_dropout)
        self.out = nn.Linear(cfg.dec_hidden, cfg.vocab_size)

    def initial_state(self, zc: torch.Tensor) -> torch.Tensor:
        # zc (B, Z+P) → h0 (layers, B, H)
        h0 = torch.tanh(self.init_h(zc)).view(zc.shape[0], self.cfg.dec_layers, self.cfg.dec_hidden)
        return h0.transpose(0, 1).contiguous()

    def forward(self, inputs: torch.Tensor, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. inputs (B, T) = ids[:, :-1] → logits (B, T, V) predicting ids[:, 1:]."""
        zc = torch.cat([z, cond], dim=1)  # (B, Z+P)
        emb = self.embed(inputs)  # (B, T, E)
        x = torch.cat([emb, zc.unsqueeze(1).expand(-1, inputs.shape[1], -1)], dim=2)  # (B, T, E+Z+P)
        h, _ = self.gru(x, self.initial_state(zc))  # (B, T, H)
        return self.out(h)  # (B, T, V)

    def step(self, token: torch.Tensor, h: torch.Tensor, zc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: token (B,) ids just emitted (<bos> first), h (layers, B, H), zc (B, Z+P)
        → (logits (B, V) over the next token, new h). Search strategies live in moldesign.decoding."""
        x = torch.cat([self.embed(token), zc], dim=1).unsqueeze(1)  # (B, 1, E+Z+P)
        y, h = self.gru(x, h)  # y (B, 1, H)
        return self.out(y.squeeze(1)), h


class CVAE(nn.Module):
    """Conditional VAE: q(z|x,c) by ConvEncoder, p(x|z,c) by GRUDecoder, p(z) = N(0, I)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.encoder = ConvEncoder(cfg)
        self.decoder = GRUDecoder(cfg)

    def encode(self, ids: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(ids, cond)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, ids: torch.Tensor, cond: torch.Tensor, word_dropout: float = 0.0,
                enc_ids: torch.Tensor | None = None):
        """ids (B, L) → (logits (B, L-1, V), mu (B, Z), logvar (B, Z)). The encoder reads `enc_ids`
        (B, L') when given (another spelling of the same molecules: randomized SMILES), else ids."""
        mu, logvar = self.encode(ids if enc_ids is None else enc_ids, cond)
        z = self.reparameterize(mu, logvar) if self.training else mu
        inputs = ids[:, :-1]
        if self.training and word_dropout > 0:
            # replace real tokens (not <bos>/<pad>) by <unk> so the decoder must lean on z
            drop = (torch.rand(inputs.shape, device=ids.device) < word_dropout) & (inputs > EOS_ID)
            inputs = inputs.masked_fill(drop, UNK_ID)
        return self.decoder(inputs, z, cond), mu, logvar


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per latent dimension, averaged over the batch: (Z,) in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(dim=0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
