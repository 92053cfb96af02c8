"""Search strategies over one decoder step, with and without the grammar mask (tiny model)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from moldesign.decoding.search import COMPLETE, MAX_BACKTRACKS, REFUSED_JUMPS, beam_search, sample
from moldesign.decoding.grammar import Grammar, rdkit_valid
from moldesign.model.networks import BOS_ID, EOS_ID
from moldesign.decoding.sampling import draw_conditions, grammar_for, reconstruct, scale


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
    from moldesign.decoding.sampling import encode

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



@pytest.mark.parametrize("constrained", [False, True])
def test_beam_best_only_stops_early_with_the_full_searchs_answer(tiny_bundle, constrained):
    """best_only stops a row once a finished hypothesis outscores every live beam; a score only
    falls as a hypothesis grows, so the answer must be the full search's best, row by row."""
    z, cond = _inputs(tiny_bundle, 40, noise=1.5)
    g = grammar_for(tiny_bundle) if constrained else None
    dec, L = tiny_bundle.model.decoder.eval(), tiny_bundle.config.max_len
    steps = {}
    for best_only in (False, True):
        calls = []
        step = dec.step
        dec.step = lambda *a, _s=step, _c=calls: (_c.append(len(a[0])), _s(*a))[1]
        try:
            steps[best_only] = (beam_search(dec, z, cond, L, 4, g, best_only=best_only), sum(calls))
        finally:
            del dec.step
    (full, full_steps), (best, best_steps) = steps[False], steps[True]
    for f, b in zip(full, best):
        assert len(b) == 1
        assert (b[0][0], b[0][2]) == (f[0][0], f[0][2]) and b[0][1] == pytest.approx(f[0][1], abs=1e-5)
    assert best_steps < full_steps  # it decoded fewer beam-steps to get there

def test_reconstruct_beam_and_unconstrained_run_through_the_api(tiny_bundle, tiny_smiles):
    smiles = tiny_smiles[:10]
    greedy = reconstruct(tiny_bundle, smiles)
    beam = reconstruct(tiny_bundle, smiles, beam=3)
    free = reconstruct(tiny_bundle, smiles, constrained=False)
    assert len(greedy) == len(beam) == len(free) == 10
    assert reconstruct(tiny_bundle, smiles, beam=1) == greedy


class _Scripted(torch.nn.Module):
    """A decoder step that ignores the latent: at position i it prefers script[i] (logit 10),
    else <eos> (3) > '1' (2) > 'C' (1) > the rest (0). The position rides in the hidden state,
    (1, B, 1), so decoding strategies (and backjumping's kept states) drive it like a GRU."""

    def __init__(self, vocab, script):
        super().__init__()
        self.vocab, self.script = vocab, script
        base = torch.zeros(len(vocab))
        for tok, v in (("<eos>", 3.0), ("1", 2.0), ("C", 1.0)):
            base[vocab.index(tok)] = v
        self.base = base

    def initial_state(self, zc):
        return torch.zeros(1, zc.shape[0], 1)

    def step(self, token, h, zc):
        pos = h[0, :, 0].long()  # (B,) tokens fed so far, <bos> included
        logits = self.base.repeat(token.shape[0], 1)  # (B, V)
        for j, p in enumerate(pos.tolist()):
            if p < len(self.script):  # a token (logit +10), or {token: added logit} for an unsure step
                entry = self.script[p]
                for tok, bonus in (entry.items() if isinstance(entry, dict) else [(entry, 10.0)]):
                    logits[j, self.vocab.index(tok)] += bonus
        return logits, h + 1


SCRIPT_VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>", "C", "c", "O", "1", "2", "(", ")", "="]


def _scripted_decode(script, max_len=20, temperature=0.0, **kw):
    from moldesign.decoding.grammar import Grammar

    vocab = SCRIPT_VOCAB
    g = Grammar(vocab)
    gen = torch.Generator().manual_seed(0)
    d = sample(_Scripted(vocab, script), torch.zeros(1, 2), torch.zeros(1, 1), max_len, temperature, 0, g, gen, **kw)
    return g, "".join(vocab[t] for t in d.ids[0]), d


def test_lookahead_steers_a_decoder_out_of_a_stranded_ring(monkeypatch):
    # the script wants C1CCO2: the O would then carry two ring bonds and nothing can close them
    free = sample(_Scripted(SCRIPT_VOCAB, list("C1CCO2")), torch.zeros(1, 2), torch.zeros(1, 1), 20, 0.0)
    assert free.status[0] == COMPLETE and not rdkit_valid("C1CCO2")  # unmasked, it walks right in
    g, s, d = _scripted_decode(list("C1CCO2"))
    assert (s, d.status[0]) == ("C1CCO1", COMPLETE) and rdkit_valid(s)  # the next choice, '1', closes it
    assert g.verify_rejects["lookahead"] >= 1
    # without the lookahead the same decoder dead-ends after C1CCO2
    from moldesign.decoding.grammar import Grammar

    monkeypatch.setattr(Grammar, "completable_after", lambda self, st, t: True)
    _, s, d = _scripted_decode(list("C1CCO2"))
    assert (s, d.status[0]) == ("C1CCO2", "dead_end")


def test_backtracking_steps_out_of_a_dead_end_the_mask_cannot_see():
    # 'Cc' then (max_len 4: three tokens with <eos>) only <eos> fits, and RDKit refuses an aromatic
    # atom outside a ring: every continuation fails, which no per-step rule sees coming
    _, s, d = _scripted_decode(["C", "c"], max_len=4)
    assert (s, d.status[0], d.backtracks[0]) == ("Cc", "dead_end", 0)
    _, s, d = _scripted_decode(["C", "c"], max_len=4, backtrack=4)
    # one step back, 'c' is forbidden at position 1; the model's next choice there is <eos>
    assert (s, d.status[0], d.backtracks[0]) == ("C", COMPLETE, 1) and rdkit_valid(s)
    # the reported log-probability is the model's for the string it returns, not the abandoned one
    dec = _Scripted(SCRIPT_VOCAB, ["C", "c"])
    h, lp = dec.initial_state(torch.zeros(1, 2)), 0.0
    for fed, nxt in ((BOS_ID, "C"), (SCRIPT_VOCAB.index("C"), "<eos>")):
        logits, h = dec.step(torch.tensor([fed]), h, None)
        lp += float(F.log_softmax(logits, 1)[0, SCRIPT_VOCAB.index(nxt)])
    assert d.logp[0] == pytest.approx(lp, abs=1e-5)


def test_backtracking_is_bounded_and_reports_what_remains():
    # depth 0 = off; a depth that cannot reach the cause leaves the row a reported dead end
    _, s, d = _scripted_decode(["C", "c"], max_len=4, backtrack=0)
    assert d.status[0] == "dead_end" and d.backtracks[0] == 0


def _scripted_logp(script, tokens):
    """The scripted decoder's log-probability of `tokens` + <eos>, fed from <bos> (teacher forcing)."""
    dec = _Scripted(SCRIPT_VOCAB, script)
    h, lp, fed = dec.initial_state(torch.zeros(1, 2)), 0.0, BOS_ID
    for nxt in tokens + ["<eos>"]:
        logits, h = dec.step(torch.tensor([fed]), h, None)
        lp += float(F.log_softmax(logits, 1)[0, SCRIPT_VOCAB.index(nxt)])
        fed = SCRIPT_VOCAB.index(nxt)
    return lp


def test_backjumps_double_until_they_reach_the_cause_and_restore_the_kept_state():
    # script C c C in 5 tokens (max_len 6): after 'Cc' the row can only open a ring it has no room
    # to close; the first jump (1 token) re-decides the ring label and dead-ends again, the second
    # (2 tokens, the depth) re-decides position 1, where 'c' is now forbidden and the model's next
    # choice is <eos>
    _, s, d = _scripted_decode(["C", "c", "C"], max_len=6)
    assert d.status[0] == "dead_end" and s.startswith("Cc")
    _, s, d = _scripted_decode(["C", "c", "C"], max_len=6, backtrack=2, refused_jump=1.0)
    assert (s, d.status[0], d.backtracks[0]) == ("C", COMPLETE, 2) and rdkit_valid(s)
    # the GRU state came back from the ring buffer at position 1: the log-probability is the
    # model's for "C" read from <bos> (a state from another position scores <eos> differently)
    assert d.logp[0] == pytest.approx(_scripted_logp(["C", "c", "C"], ["C"]), abs=1e-5)


def test_jump_target_counts_back_from_where_the_mask_pushed_the_row():
    from moldesign.decoding.search import _jump, _jump_to

    assert [_jump(10, k, 32) for k in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
    assert _jump(40, 7, 32) == 32  # never deeper than the ring buffer
    ids, free = list(range(10)), [0.0] * 10
    assert [_jump_to(ids, free, k, 32) for k in (1, 2, 3)] == [9, 8, 6]
    pushed = free[:]
    pushed[5] = pushed[7] = np.log(0.1)  # the mask left 10% of the model's mass at 5 and 7
    assert [_jump_to(ids, pushed, k, 32) for k in (1, 2, 3)] == [4, 3, 1]  # from the first of them
    assert _jump_to(ids, pushed, 1, 4) == 6  # outside the depth window, 5 does not count: from 7
    assert _jump_to(ids, pushed, 3, 4) == 6  # never more than depth behind the dead end


def test_a_sampled_row_the_length_budget_corners_jumps_the_whole_depth_after_one_token():
    from moldesign.decoding.search import _jump_to

    ids, free = list(range(10)), [0.0] * 10
    assert [_jump_to(ids, free, k, 32, cornered=True) for k in (1, 2, 3)] == [9, 0, 0]
    assert _jump_to(ids, free, 2, 4, cornered=True) == 6  # never more than depth behind the dead end
    # the cornered 'Cc' row above, whole-prefix depth, sampled (T 0.1: the script's choice has
    # logit 10 over the rest, so every draw follows it): its second jump re-decides position 0
    # with nothing forbidden (a fresh draw), so it writes 'Cc' again and again until its jumps
    # run out, and is reported a dead end with its prefix, not replaced
    _, s, d = _scripted_decode(["C", "c", "C"], max_len=6, temperature=0.1, backtrack=8, refused_jump=1.0)
    assert (d.backtracks[0], d.status[0]) == (MAX_BACKTRACKS, "dead_end") and s.startswith("Cc")
    # greedy, the same row keeps doubling back from the dead end and keeps the model's first token
    _, s, d = _scripted_decode(["C", "c", "C"], max_len=6, backtrack=8)
    assert (s, d.status[0], d.backtracks[0]) == ("C", COMPLETE, 2) and rdkit_valid(s)


def test_a_sampled_jump_draws_afresh_a_greedy_jump_forbids():
    # position 1 is a coin toss between 'c' (then only <eos> fits in max_len 4, and RDKit refuses
    # 'Cc': a dead end) and 'O' ('CO' is fine). Sampling, a row that drew 'c' jumps back and draws
    # position 1 afresh, so some toss 'c' again and jump again, and a row whose second jump
    # restarts it (it is cornered) draws position 0 afresh too: it still starts with the model's
    # sure 'C' (a ban there made rescued rows start with rare tokens). Greedy forbids what it had.
    g = Grammar(SCRIPT_VOCAB)
    dec = _Scripted(SCRIPT_VOCAB, ["C", {"c": 6.0, "O": 6.0}])
    n = 200
    d = sample(dec, torch.zeros(n, 2), torch.zeros(n, 1), 4, 1.0, 0, g, torch.Generator().manual_seed(0),
               backtrack=4, refused_jump=1.0)
    strings = ["".join(SCRIPT_VOCAB[t] for t in ids) for ids in d.ids]
    assert 40 < sum(k > 0 for k in d.backtracks) < 160  # about half the rows drew 'c' first
    assert sum(k >= 2 for k in d.backtracks) > 10  # 'c' drawn again after a jump
    assert all(s.startswith("C") for s in strings)
    assert all(st == COMPLETE and rdkit_valid(s) for s, st in zip(strings, d.status))
    # greedy at the same step ('c' and 'O' tie; argmax takes the first, 'c'): one jump, 'c' banned
    d = sample(_Scripted(SCRIPT_VOCAB, ["C", {"c": 6.0, "O": 6.0}]), torch.zeros(1, 2), torch.zeros(1, 1), 4, 0.0, 0,
               g, backtrack=4)
    assert (SCRIPT_VOCAB[d.ids[0][1]], d.backtracks[0], d.status[0]) == ("O", 1, COMPLETE)


def test_a_greedy_row_restarts_with_another_first_token_only_if_the_model_considers_one():
    # script 'c' then 'C' in max_len 4: the lone aromatic c can never be in a ring, so the row
    # dead-ends and its jump goes back to position 0. The scripted model gives every other first
    # token < 0.01% (the script's 'c' has logit 10 over them): below FIRST_TOKEN_FLOOR the row is
    # reported a dead end with its prefix instead of restarting as a string the model hardly
    # considers; with the floor off (0) or below that probability it restarts with 'C'
    from moldesign.decoding.search import FIRST_TOKEN_FLOOR

    assert FIRST_TOKEN_FLOOR > 1e-4
    _, s, d = _scripted_decode(["c", "C"], max_len=4, backtrack=4)
    assert (s, d.status[0], d.backtracks[0]) == ("c", "dead_end", 0)  # the jump was not made
    for floor in (0.0, 1e-5):
        _, s, d = _scripted_decode(["c", "C"], max_len=4, backtrack=4, first_token_floor=floor)
        assert (s, d.status[0], d.backtracks[0]) == ("CC", COMPLETE, 1) and rdkit_valid(s)


def test_rescue_dead_ends_takes_the_beams_best_finished_string():
    from moldesign.decoding.search import rescue_dead_ends

    # two rows: the 'c','C' script dead-ends greedily (its restart is below the first-token floor),
    # the 'C' script finishes; only the first is handed to the beam, which finishes it
    g = Grammar(SCRIPT_VOCAB)
    dec = _Scripted(SCRIPT_VOCAB, ["c", "C"])
    d = sample(dec, torch.zeros(1, 2), torch.zeros(1, 1), 4, 0.0, 0, g, backtrack=4)
    assert d.status == ["dead_end"]
    best = beam_search(dec, torch.zeros(1, 2), torch.zeros(1, 1), 4, 5, g)[0][0]
    assert best[2] == COMPLETE
    assert rescue_dead_ends(dec, torch.zeros(1, 2), torch.zeros(1, 1), 4, d, 5, g) == [0]
    assert (d.ids[0], d.logp[0], d.status[0]) == best
    assert rdkit_valid("".join(SCRIPT_VOCAB[t] for t in d.ids[0]))
    ok = sample(_Scripted(SCRIPT_VOCAB, ["C"]), torch.zeros(1, 2), torch.zeros(1, 1), 4, 0.0, 0, g, backtrack=4)
    before = (ok.ids[0][:], ok.status[0], ok.logp[0])
    assert rescue_dead_ends(dec, torch.zeros(1, 2), torch.zeros(1, 1), 4, ok, 5, g) == []
    assert (ok.ids[0], ok.status[0], ok.logp[0]) == before
    # width 0 hands nothing over
    d = sample(dec, torch.zeros(1, 2), torch.zeros(1, 1), 4, 0.0, 0, g, backtrack=4)
    assert rescue_dead_ends(dec, torch.zeros(1, 2), torch.zeros(1, 1), 4, d, 0, g) == [] and d.status == ["dead_end"]


def test_greedy_decode_hands_rows_backjumping_left_unfinished_to_a_beam(tiny_bundle):
    from moldesign.decoding.sampling import decode

    rng = np.random.default_rng(0)
    n = 200
    props = draw_conditions(tiny_bundle, n, rng)
    z = rng.standard_normal((n, tiny_bundle.config.latent_dim)).astype(np.float32) * 2.0
    default, off = decode(tiny_bundle, z, props), decode(tiny_bundle, z, props, rescue_beam=0)
    changed = [i for i in range(n) if default[i] != off[i]]
    assert changed  # this scenario has rows greedy backjumping leaves unfinished
    g = grammar_for(tiny_bundle)
    cond = scale(tiny_bundle, props)
    hyps = beam_search(tiny_bundle.model.decoder, torch.from_numpy(z[changed]), cond[changed],
                       tiny_bundle.config.max_len, 5, g)
    for i, h in zip(changed, hyps):
        assert not rdkit_valid(off[i]) and rdkit_valid(default[i])  # only unfinished rows change
        assert default[i] == tiny_bundle.vocab.decode(h[0][0])  # to the beam's best finished string
    assert np.mean([rdkit_valid(x) for x in default]) > np.mean([rdkit_valid(x) for x in off])


def test_a_refused_pick_the_model_was_sure_of_jumps_back_at_once():
    # after 'Cc' the script's 'C' (probability ~1) leaves the aromatic c in no ring: the aromatic
    # rule refuses it. With refused_jump 0.5 the row jumps back one token right there (no dead
    # end first) and the model's next choice at position 1, with 'c' forbidden (greedy), is <eos>
    g, s, d = _scripted_decode(["C", "c", "C"], max_len=20, backtrack=8, refused_jump=0.5)
    assert (s, d.status[0], d.backtracks[0]) == ("C", COMPLETE, 1) and rdkit_valid(s)
    assert g.verify_rejects["aromatic"] >= 1
    # off (1.0), the same row takes the next-best token after the refusal instead of jumping, walks
    # on in the doomed 'Cc' and needs several jumps from later dead ends to reach the same answer
    _, s, d = _scripted_decode(["C", "c", "C"], max_len=20, backtrack=8, refused_jump=1.0)
    assert s == "C" and d.backtracks[0] > 1
    # sampled (T 0.1), the jump at the refusal forbids nothing: the row retakes 'c' and is refused
    # again, REFUSED_JUMPS times, then goes on with the next-best token after the refusal
    _, s, d = _scripted_decode(["C", "c", "C"], max_len=20, temperature=0.1, backtrack=8, refused_jump=0.5)
    assert d.backtracks[0] >= REFUSED_JUMPS and s.startswith("Cc")
    assert rdkit_valid(s) == (d.status[0] == COMPLETE)
    # greedy decodes keep the model's path: refused_jump defaults to off at temperature 0
    _, s_default, d0 = _scripted_decode(["C", "c", "C"], max_len=20, backtrack=8)
    _, s_off, d1 = _scripted_decode(["C", "c", "C"], max_len=20, backtrack=8, refused_jump=1.0)
    assert (s_default, d0.backtracks) == (s_off, d1.backtracks)


def test_lazy_masking_draws_from_the_masked_distribution():
    """Sampling without top-k draws first from the unmasked distribution and redraws only the
    refused rows: the result must be distributed as the masked, renormalised softmax. One step
    after `C(` (a `)` or `<eos>` would be refused), many rows, counts against the expected
    probabilities."""
    from moldesign.decoding.search import _pick_lazy
    from moldesign.decoding.grammar import Grammar, ParseState

    vocab = SCRIPT_VOCAB
    g = Grammar(vocab)
    st = ParseState()
    for tok in ("C", "("):
        g.advance(st, vocab.index(tok))
    n = 20000
    logits = torch.log_softmax(torch.randn(1, len(vocab), generator=torch.Generator().manual_seed(3)) * 2, 1)
    logits[:, :2] = float("-inf")  # <pad> <bos>
    logits = logits.expand(n, -1).clone()
    picked, _ = _pick_lazy(logits.clone(), torch.log_softmax(logits, 1), 1.0, 0, torch.Generator().manual_seed(0), g,
                           [st] * n, [10] * n, None, 0.5)
    allowed = torch.tensor([g.check(st.copy(), t) for t in range(len(vocab))])  # mask and lazy checks
    assert 2 <= int(allowed.sum()) < len(vocab) - 2
    p = torch.softmax(logits[0].masked_fill(~allowed, float("-inf")), 0)
    counts = torch.bincount(picked, minlength=len(vocab)).float() / n
    assert counts[~allowed].sum() == 0
    assert torch.allclose(counts, p, atol=0.015)


@pytest.mark.parametrize("depth", [2, 32])
def test_backjumping_on_the_tiny_model_keeps_scores_and_statuses_honest(tiny_bundle, depth):
    """Rows that jumped back report the model's teacher-forced log-probability of the string they
    return (so every restored GRU state, from the ring buffer or re-run when its slot was reused,
    was the right one), finished rows parse, unfinished ones are reported, never replaced."""
    z, cond = _inputs(tiny_bundle, 120, noise=2.0)
    g = grammar_for(tiny_bundle)
    dec = tiny_bundle.model.decoder.eval()
    d = sample(dec, z, cond, tiny_bundle.config.max_len, 1.0, 0, g, torch.Generator().manual_seed(0), backtrack=depth)
    jumped = [i for i, k in enumerate(d.backtracks) if k > 0]
    assert jumped  # the scenario holds rows that jumped
    for i in jumped:
        s = tiny_bundle.vocab.decode(d.ids[i])
        assert rdkit_valid(s) == (d.status[i] == COMPLETE), (s, d.status[i])
        if d.status[i] == COMPLETE:
            with torch.no_grad():
                expected = _logp(tiny_bundle, z[i], cond[i], d.ids[i])
            assert d.logp[i] == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("constrained", [False, True])
def test_continuous_batching_decodes_every_row_as_it_would_alone(tiny_bundle, constrained):
    """batch_size S < B: S slots, a finished row's slot (and its slot of the GRU-state history)
    going to the next row. Greedy decodes are deterministic, so every row must come out as it does
    with all rows at once — ids, status, jumps, score — whatever the rows that shared its slot did."""
    z, cond = _inputs(tiny_bundle, 60, noise=2.0)
    g = grammar_for(tiny_bundle) if constrained else None
    dec, L = tiny_bundle.model.decoder.eval(), tiny_bundle.config.max_len
    kw = dict(backtrack=L) if constrained else {}
    whole = sample(dec, z, cond, L, 0.0, 0, g, **kw)
    if constrained:
        assert sum(k > 0 for k in whole.backtracks) >= 3  # rows that jumped, so slots' histories matter
    for S in (1, 7, 59):
        d = sample(dec, z, cond, L, 0.0, 0, g, batch_size=S, **kw)
        assert (d.ids, d.status, d.backtracks) == (whole.ids, whole.status, whole.backtracks)
        assert d.logp == pytest.approx(whole.logp, abs=1e-4)


def test_continuous_batching_at_t1_keeps_scores_and_statuses_honest(tiny_bundle):
    """Sampled with backjumping through 5 slots: every row is returned once, finished rows parse
    and report the model's teacher-forced log-probability of their string (the kept GRU state
    each jump restored was that row's, not the slot's previous row's)."""
    z, cond = _inputs(tiny_bundle, 80, noise=2.0)
    g = grammar_for(tiny_bundle)
    dec, L = tiny_bundle.model.decoder.eval(), tiny_bundle.config.max_len
    d = sample(dec, z, cond, L, 1.0, 0, g, torch.Generator().manual_seed(0), backtrack=L, batch_size=5)
    assert len(d.ids) == len(d.status) == len(d.logp) == 80
    jumped = [i for i, k in enumerate(d.backtracks) if k > 0]
    assert len(jumped) >= 3
    for i in jumped + list(range(10)):
        s = tiny_bundle.vocab.decode(d.ids[i])
        assert rdkit_valid(s) == (d.status[i] == COMPLETE), (s, d.status[i])
        if d.status[i] == COMPLETE:
            with torch.no_grad():
                assert d.logp[i] == pytest.approx(_logp(tiny_bundle, z[i], cond[i], d.ids[i]), abs=1e-3)


def test_rows_that_join_later_get_the_first_token_floor_too():
    # the 'c','C' script dead-ends every row at position 0 with no plausible restart; through one
    # slot, rows 2 and 3 start only after row 1 ends, and must be judged on their own first step
    g = Grammar(SCRIPT_VOCAB)
    d = sample(_Scripted(SCRIPT_VOCAB, ["c", "C"]), torch.zeros(3, 2), torch.zeros(3, 1), 4, 0.0, 0, g,
               backtrack=4, batch_size=1)
    assert (d.status, d.backtracks) == (["dead_end"] * 3, [0, 0, 0])
    d = sample(_Scripted(SCRIPT_VOCAB, ["c", "C"]), torch.zeros(3, 2), torch.zeros(3, 1), 4, 0.0, 0, g,
               backtrack=4, batch_size=1, first_token_floor=0.0)
    assert (d.status, d.backtracks) == ([COMPLETE] * 3, [1, 1, 1])
