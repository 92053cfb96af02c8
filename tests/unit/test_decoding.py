"""Search strategies over one decoder step, with and without the grammar mask (tiny model)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from moldesign.decoding import COMPLETE, beam_search, sample
from moldesign.grammar import rdkit_valid
from moldesign.networks import BOS_ID, EOS_ID
from moldesign.sampling import draw_conditions, grammar_for, reconstruct, scale


def _inputs(bundle, n, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    props = draw_conditions(bundle, n, rng)
    z = torch.from_numpy((noise * rng.standard_normal((n, bundle.config.latent_dim))).astype(np.float32))
    return z, scale(bundle, props)


def _logp(bundle, z, cond, ids):
    """Teacher-forced log-probability of ids (+ <eos>) under the model: the score beam search reports."""
    seq = torch.tensor([[BOS_ID] + ids + [EOS_ID]])
    logits = bundle.model.decoder(seq[:, :-1], z[None], cond[None])  # (1, T, V)
    return float(F.log_softmax(logits, dim=2)[0].gather(1, seq[0, 1:, None]).sum())


def test_step_matches_teacher_forcing(tiny_bundle):
    z, cond = _inputs(tiny_bundle, 3)
    dec = tiny_bundle.model.decoder.eval()
    ids = torch.tensor([[BOS_ID, 5, 6, 7], [BOS_ID, 4, 4, 5], [BOS_ID, 6, 5, 4]])
    with torch.no_grad():
        full = dec(ids, z, cond)  # (3, 4, V)
        h, zc = dec.initial_state(torch.cat([z, cond], 1)), torch.cat([z, cond], 1)
        for t in range(ids.shape[1]):
            logits, h = dec.step(ids[:, t], h, zc)
            assert torch.allclose(logits, full[:, t], atol=1e-5)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_constrained_decodes_are_valid_or_reported_unfinished(tiny_bundle, temperature):
    z, cond = _inputs(tiny_bundle, 200, noise=2.0)  # far from the training latents: the model errs
    g = grammar_for(tiny_bundle)
    d = sample(tiny_bundle.model.decoder.eval(), z, cond, tiny_bundle.config.max_len, temperature, 0, g,
               torch.Generator().manual_seed(0))
    strings = [tiny_bundle.vocab.decode(r) for r in d.ids]
    for s, st in zip(strings, d.status):
        assert rdkit_valid(s) == (st == COMPLETE), (s, st)  # finished ⇒ valid; unfinished ⇒ reported invalid
    free = sample(tiny_bundle.model.decoder, z, cond, tiny_bundle.config.max_len, temperature, 0, None,
                  torch.Generator().manual_seed(0))
    free_valid = np.mean([rdkit_valid(tiny_bundle.vocab.decode(r)) for r in free.ids])
    assert np.mean([rdkit_valid(s) for s in strings]) >= free_valid - 0.05  # the mask does not make it worse


def test_short_max_len_ends_unfinished_not_replaced(tiny_bundle):
    z, cond = _inputs(tiny_bundle, 50)
    d = sample(tiny_bundle.model.decoder.eval(), z, cond, 4, 0.0, 0, grammar_for(tiny_bundle))
    for ids, st in zip(d.ids, d.status):
        s = tiny_bundle.vocab.decode(ids)
        assert len(ids) <= 3 and rdkit_valid(s) == (st == COMPLETE)
    assert any(st != COMPLETE for st in d.status)  # the training molecules are longer than 3 tokens


@pytest.mark.parametrize("constrained", [True, False])
def test_beam_width_one_is_greedy(tiny_bundle, constrained):
    z, cond = _inputs(tiny_bundle, 40, seed=1)
    g = grammar_for(tiny_bundle) if constrained else None
    dec = tiny_bundle.model.decoder.eval()
    greedy = sample(dec, z, cond, tiny_bundle.config.max_len, 0.0, 0, g)
    beams = beam_search(dec, z, cond, tiny_bundle.config.max_len, 1, g)
    assert [b[0][0] for b in beams] == greedy.ids
    assert [b[0][1] for b in beams] == pytest.approx(greedy.logp, abs=1e-4)


def test_beam_results_are_sorted_and_scored_by_model_log_probability(tiny_bundle, tiny_smiles):
    mu_strings = tiny_smiles[:8]
    from moldesign.chem import properties_array
    from moldesign.sampling import encode

    props = properties_array(mu_strings)
    mu, _ = encode(tiny_bundle, mu_strings, props)
    z, cond = torch.from_numpy(mu), scale(tiny_bundle, props)
    hyps = beam_search(tiny_bundle.model.decoder.eval(), z, cond, tiny_bundle.config.max_len, 4, None)
    for i, row in enumerate(hyps):
        scores = [s for _, s, _ in row]
        assert scores == sorted(scores, reverse=True) and 1 <= len(row) <= 4
        for ids, s, st in row:
            assert st == COMPLETE
            with torch.no_grad():
                assert s == pytest.approx(_logp(tiny_bundle, z[i], cond[i], ids), abs=1e-3)


def test_reconstruct_beam_and_unconstrained_run_through_the_api(tiny_bundle, tiny_smiles):
    smiles = tiny_smiles[:10]
    greedy = reconstruct(tiny_bundle, smiles)
    beam = reconstruct(tiny_bundle, smiles, beam=3)
    free = reconstruct(tiny_bundle, smiles, constrained=False)
    assert len(greedy) == len(beam) == len(free) == 10
    assert reconstruct(tiny_bundle, smiles, beam=1) == greedy
