"""Search strategies over one decoder step: greedy, temperature/top-k sampling, beam search.

The network (networks.GRUDecoder.step) maps (token, state) → (logits, state); this module owns
everything about choosing tokens. With a `grammar.Grammar` every step of every strategy is masked
(grammar.py: SMILES syntax, ring bonds, valence; lazily, kekulization of completed aromatic systems
and RDKit acceptance at `<eos>`). A sequence is only ever finished by `<eos>`: one that reaches a
dead end (no allowed token) or `max_len` keeps its prefix and the status says so — it is never
replaced by something else, and its prefix does not parse (the mask would otherwise have allowed
`<eos>`). Shapes: B rows, V vocabulary, K beam width, H hidden, Z+P latent and condition.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .grammar import Grammar, ParseState
from ..model.networks import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEVER = (PAD_ID, BOS_ID, UNK_ID)  # never emitted mid-sequence
COMPLETE, DEAD_END, MAX_LEN = "eos", "dead_end", "max_len"


@dataclass
class Decoded:
    """Per row: token ids without <bos>/<eos>, status (eos | dead_end | max_len), the model's
    log-probability of the ids (+ <eos> when complete) under the unmasked softmax, and how many
    backjumps the row made (0 without a grammar or with backtrack=0)."""

    ids: list[list[int]]
    status: list[str]
    logp: list[float] = field(default_factory=list)
    backtracks: list[int] = field(default_factory=list)


# Backjumping is off by default: it lifts T = 1 validity to 0.986 (D = 32) / 1.000 (whole prefix)
# on the MOSES model but gives fewer valid molecules per second than decoding without it
# (sampling.decode's docstring has the numbers; bench/decoding_bench.py measures them).
BACKTRACK_DEPTH = 0
MAX_BACKTRACKS = 16  # per row: backjumps before the row is reported a dead end
# a lazy check refusing a token the model gave more than this probability makes the row jump back
# (up to REFUSED_JUMPS times; sample's docstring says why); 1.0 turns it off
REFUSED_JUMP = 0.5
REFUSED_JUMPS = 8
# a greedy row whose jumps reach position 0 restarts with another first token only if the model
# gives that token at least this probability; else it is reported a dead end (sample's docstring)
FIRST_TOKEN_FLOOR = 0.01


def _pick(logits: torch.Tensor, temperature: float, top_k: int, generator) -> torch.Tensor:
    """logits (b, V) with -inf where forbidden → token ids (b,)."""
    if temperature <= 0:
        return logits.argmax(dim=1)
    logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[1]), dim=1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=1), 1, generator=generator).squeeze(1)


def _apply_budget(mask: torch.Tensor, grammar: Grammar, states, remaining) -> torch.Tensor:
    """mask (b, V): also forbid, per row, tokens after which the string cannot finish in the
    `remaining` tokens left after them (grammar.budget_mask; <eos> always fits)."""
    for j, (st, rem) in enumerate(zip(states, remaining)):
        ok = grammar.budget_mask(st, rem)
        if ok is not None:
            mask[j] &= torch.from_numpy(ok).to(mask.device)
    return mask


def _jump(n: int, k: int, depth: int) -> int:
    """Tokens the k-th backjump (k = 1, 2, …) of a row at a dead end after n tokens goes back:
    1, 2, 4, 8, … up to `depth` (and the whole prefix). Doubling finds a cause several tokens back
    (the start of an aromatic system that cannot be kekulized, a wandering tail) in log steps
    instead of exhausting every alternative at each position on the way."""
    return min(1 << min(k - 1, 30), depth, n)


PUSHED = float(np.log(0.5))  # a position where the mask left less than half the model's mass


def _jump_to(ids: list[int], pushed: list[float], k: int, depth: int, cornered: bool = False) -> int:
    """Position the k-th backjump of a row at a dead end re-decides. The row went wrong before the
    first position, within `depth`, where the mask pushed it off the model's choice (left it less
    than half its mass): the model's plan there needed something the grammar refuses, and what
    follows is the model improvising. So jumps count back from that position (from the dead end
    when there is none): 1, 2, 4, … tokens (`_jump`), never more than `depth` behind the dead end.

    A row the length budget `cornered` (it forbade tokens at the dead end: the row has no room
    left to close what it opened) is the model writing a molecule longer than max_len, and a few
    tokens back it writes the same one again: measured on the shipped model (1,000 rows at T = 1,
    whole-prefix depth), ~200 cornered rows failed every jump of 1 … 32 tokens and were rescued
    only at 64 tokens or the whole prefix, 45% of the re-decoded tokens wasted. So after a first
    jump of one token (which rescues a row its last choice cornered), a cornered row goes back
    `depth` tokens at once (at D ≥ max_len: the whole prefix, a fresh decode of the same latent
    with its first token forbidden). Only when sampling (T > 0, where that is another draw from the
    same latent): a greedy decode is the answer for its point (reconstruction, interpolation,
    optimization), and a rescue that keeps most of the model's prefix stays closer to it than a
    string that starts differently, so greedy rows jump 1, 2, 4, … as above."""
    n = len(ids)
    if cornered and k > 1:
        return max(n - depth, 0)
    q = next((p for p in range(max(n - depth, 0), n) if pushed[p] < PUSHED), n)
    return max(q - _jump(q, k, depth), n - depth, 0)


@torch.no_grad()
def sample(decoder, z: torch.Tensor, cond: torch.Tensor, max_len: int, temperature: float = 1.0, top_k: int = 0,
           grammar: Grammar | None = None, generator: torch.Generator | None = None,
           backtrack: int = BACKTRACK_DEPTH, refused_jump: float | None = None,
           ban_when_sampling: bool = False, first_token_floor: float | None = None,
           batch_size: int | None = None) -> Decoded:
    """Greedy (temperature 0) or temperature/top-k sampling of one sequence per row of z (B, Z).

    At most max_len - 1 tokens (the <bos> slot counts in max_len, as in training). With a grammar
    every row draws from the model's distribution renormalised over the allowed tokens (forbidden
    tokens get -inf before the temperature and top-k), a pick that fails a lazy check is masked
    and that row picks again, and the grammar's length budget keeps a row from opening rings or
    branches it has no tokens left to close. Without top-k this is done lazily (`_pick_lazy`):
    each row first draws from the unmasked distribution and only a row whose draw the grammar
    refuses builds its mask and draws again — the same distribution (an allowed draw is kept
    with probability p(t), a refused one is redrawn from p restricted to the allowed tokens:
    p(t) / P(allowed) in all) and the same greedy choice, at a fraction of the cost (most draws are
    allowed, and building the mask was most of the grammar's cost per token).

    Bounded backjumping (grammar only, `backtrack` = depth D > 0): a row whose mask leaves no token
    (a dead end no per-step rule saw coming, e.g. an aromatic system that no continuation
    kekulizes, or a wandering row the length budget corners) goes back `_jump` tokens (1, 2, 4, …
    ≤ D; when sampling, a row the length budget cornered goes back D tokens from its second jump
    on, `_jump_to`) and decodes on from the model's distribution at that point; a greedy row
    forbids the token it had there (else it would pick it again), a sampled row draws that
    position afresh, forbidding nothing. Bans when sampling pushed a row that jumps again and
    again onto ever less likely tokens, worst at its restarts from position 0: on the shipped model
    (5,000 latents at T = 1, runs/s8/ban_T1.json) 360 of the valid strings then began with a token
    that starts < 0.1% of ZINC training SMILES ([O-], P, [S+], [S-], …), against 5 unconstrained,
    14 with the mask alone and 22 without bans; FCD to ZINC test on 2,551 valid molecules each
    5.45 with bans, 5.00 without (mask alone 5.25, unconstrained 4.70), validity 0.999 either way.
    Banning only where the model was sure of the token (p > 0.9), or everywhere but position 0,
    lay between (FCD 5.32, 5.27). The price: at low temperature a fresh draw retakes the same path
    more often (T = 0.6, 2,000 latents: 3,857 jumps and 0.995 valid without bans, 2,497 and 0.9985
    with). `ban_when_sampling` restores the bans at T > 0 (the rule before; for the bench to
    measure). A greedy row whose jumps reach position 0 restarts with its first token forbidden
    only if the best first token left has model probability ≥ `first_token_floor`
    (FIRST_TOKEN_FLOOR, 0.01; 0 turns it off), else it is reported `dead_end`: such a restart is
    not the model's molecule for that latent but the grammar's. Measured on the shipped model
    (2,000 prior latents, greedy, runs/s8/greedy1.py): 140 rows' jumps reached position 0, and 112
    of them restarted with a first token the model gave < 0.1% (PCC…, [N+]C…, [O-]C…, SC…); 66
    valid strings began with a token that starts < 0.1% of ZINC SMILES, 11 with the floor; validity
    1.000 → 0.939. sampling.decode then hands greedy rows left unfinished to a beam search
    (`rescue_dead_ends`), which finishes most of them with the most likely string it finds. After
    MAX_BACKTRACKS jumps a row is reported `dead_end` with its prefix. A row
    also jumps, up to REFUSED_JUMPS times, when a lazy check refuses a token the model gave more
    than `refused_jump` of its probability (`REFUSED_JUMP`): the model's plan there was an invalid
    molecule, and the next-best token mostly leads it astray (measured: every row that ended a
    dead end had such a refusal, and 57% of the rows with one ended a dead end). The same latent
    throughout, never a fresh sample; deterministic at temperature 0. It is cheap and batched: the
    GRU state before each position is kept per slot (S, max_len, layers, H: 196 MB at batch_size
    1,000 on the shipped model), and the parse state is rebuilt from the kept prefix (grammar only, no
    network). `Decoded.backtracks` counts the jumps per row.

    Continuous batching (`batch_size` S < B): at most S rows decode at once, and a row that
    finishes hands its slot (and its slot of the GRU-state history) to the next row waiting, so
    the GRU runs on S rows until the last S are under way, instead of a batch shrinking to a few
    slow rows — the rows backjumping rescues, decoded at batch 1–50 for hundreds of steps, where
    the GRU costs up to 7× per row-step what it costs at batch ≥ 250 (one thread, shipped model,
    session 8: ~38 µs a row-step at batch ≥ 250, 60 µs at 50, 280 µs at 1).
    Every row is decoded as it would be alone (the rows are independent); only the random draws
    at T > 0 depend on which rows share a step. None: all B rows at once. Measured on the shipped
    model (5,000 prior latents, 1,000 slots vs calls of 1,000, one thread, median of 3 rounds,
    runs/s9/refill.py): T = 1 with backjumping 32.0 → 28.8 s; unconstrained, the mask alone and
    greedy decodes the same within the machine's ±10% (their rows end at similar lengths).
    """
    B = z.shape[0]
    sampler = Sampler(decoder, max_len, temperature, top_k, grammar, generator, backtrack, refused_jump,
                      ban_when_sampling, first_token_floor, B if batch_size is None else batch_size)
    sampler.push(z, cond)
    while sampler.busy:
        sampler.step()
    rows = [sampler.pop(r) for r in range(B)]  # (ids, status, log p, backjumps) per row
    return Decoded(*(list(col) for col in zip(*rows))) if rows else Decoded([], [], [], [])


class Sampler:
    """`sample`'s decoding loop as a stream (sample's docstring says what it does): rows are pushed
    with their (z, c) at any time (`push`), each `step()` advances every decoding row by one GRU
    step and returns the rows that ended in it, and `pop(row)` hands a finished row over as (ids,
    status, log p, backjumps). At most `slots` rows decode at once; the others wait, in the order
    pushed, for a finished row's slot. Rows are independent, so a greedy row decodes the same
    whatever shares its steps or when it was pushed: the optimizer pushes each start's next
    population as soon as that start's rows are scored, and the rows of slow starts (long
    backjumping tails) overlap other starts' next generations instead of holding up a round.
    Shapes: S slots, b rows alive, V vocabulary, H hidden, Z+P latent and condition."""

    def __init__(self, decoder, max_len: int, temperature: float = 1.0, top_k: int = 0,
                 grammar: Grammar | None = None, generator: torch.Generator | None = None,
                 backtrack: int = BACKTRACK_DEPTH, refused_jump: float | None = None,
                 ban_when_sampling: bool = False, first_token_floor: float | None = None, slots: int = 1000):
        self.decoder, self.max_len, self.temperature, self.top_k = decoder, max_len, temperature, top_k
        self.grammar, self.generator, self.backtrack = grammar, generator, backtrack
        self.ban_when_sampling = ban_when_sampling
        self.S = max(1, int(slots))
        self.first_token_floor = FIRST_TOKEN_FLOOR if first_token_floor is None else first_token_floor
        self.floor_applies = (grammar is not None and backtrack > 0 and temperature <= 0
                              and self.first_token_floor > 0)
        self.refused_jump = (REFUSED_JUMP if temperature > 0 else 1.0) if refused_jump is None else refused_jump
        self.can_back = grammar is not None and backtrack > 0
        # (S, V) when a greedy row may have to restart: per slot, its row's log-probabilities for the
        # first token over the tokens that may start a string (-inf elsewhere), for
        # _first_token_plausible; written at each row's first step
        self.first_lp: torch.Tensor | None = None
        self.start_ok: torch.Tensor | None = None
        self.alive = np.zeros(0, dtype=np.int64)  # rows decoding now, in the order of h's batch dimension
        self.slot = np.zeros(0, dtype=np.int64)  # the slot of each row in `alive`
        self.free_slots: list[int] = list(range(self.S))
        self.queue: collections.deque = collections.deque()  # (first row, zc chunk (n, Z+P)) waiting
        self.waiting = 0  # rows in the queue
        self.rows = 0  # rows pushed so far (the next row's number)
        self.zc: torch.Tensor | None = None  # (S, Z+P): each slot's row's [z, c]
        self.h: torch.Tensor | None = None  # (layers, b, H)
        self.token: torch.Tensor | None = None  # (b,): each alive row's last token
        # hist[s, p]: the GRU state the row in slot s had before deciding position p (layers, H), every
        # position. A ring buffer of the last D + 1 positions is not enough: after a jump, the slots of
        # positions before it may hold states of the abandoned tail (measured: 207 of 1,111 jumps at
        # D = 32). (every entry is written, at the step that decides its position, before a jump can read it)
        self.hist: torch.Tensor | None = None
        # Per row: ids, status, logp, backs until popped; what only a decoding row needs (parse
        # state, per-token log p so a backtrack can drop its tail, pushed, bans) only while it
        # decodes, so memory follows S, not the rows pushed (a million-row decode holds S parse states)
        self.ids: dict[int, list[int]] = {}
        self.status: dict[int, str] = {}
        self.logp: dict[int, float] = {}  # set when the row ends
        self.backs: dict[int, int] = {}
        self.states: dict[int, ParseState] = {}
        self.lps: dict[int, list[float]] = {}
        # per position: log of the model's probability mass the mask left (0: not pushed, or not
        # measured: a lazily accepted draw never builds its mask)
        self.pushed: dict[int, list[float]] = {}
        self.bans: dict[int, dict[int, set[int]]] = {}  # row → position → tokens ruled out there
        self.has_bans: set[int] = set()  # rows with a banned token somewhere
        self.steps = self.row_steps = 0  # GRU steps run, and rows summed over them (mean batch = ratio)

    @property
    def busy(self) -> bool:
        """Rows are decoding or waiting."""
        return bool(self.alive.size or self.waiting)

    def push(self, z: torch.Tensor, cond: torch.Tensor) -> range:
        """Queue rows z (n, Z), cond (n, P) (scaled), on the model's device; returns their row numbers."""
        n = z.shape[0]
        if n:
            self.queue.append((self.rows, torch.cat([z, cond], dim=1)))
            self.waiting += n
        self.rows += n
        return range(self.rows - n, self.rows)

    def pop(self, r: int) -> tuple[list[int], str, float, int]:
        """A finished row's (token ids without <bos>/<eos>, status, log p, backjumps); forgets the row."""
        return self.ids.pop(r), self.status.pop(r), self.logp.pop(r), self.backs.pop(r)

    def _admit(self) -> int:
        """Waiting rows take free slots, in the order pushed, starting from <bos> → how many."""
        n = min(len(self.free_slots), self.waiting)
        if not n:
            return 0
        rows, chunks, need = [], [], n
        while need:
            first, zc = self.queue[0]
            take = min(need, len(zc))
            rows.append(np.arange(first, first + take))
            chunks.append(zc[:take])
            if take == len(zc):
                self.queue.popleft()
            else:
                self.queue[0] = (first + take, zc[take:])
            need -= take
        new, zc_new = np.concatenate(rows), torch.cat(chunks)  # (n,), (n, Z+P)
        self.waiting -= n
        new_slots, self.free_slots = self.free_slots[:n], self.free_slots[n:]
        if self.zc is None:
            self.zc = zc_new.new_empty((self.S, zc_new.shape[1]))
        self.zc[torch.tensor(new_slots, dtype=torch.long, device=zc_new.device)] = zc_new
        for r in new.tolist():
            self.ids[r], self.status[r], self.backs[r] = [], MAX_LEN, 0
            self.lps[r], self.pushed[r] = [], []
            if self.grammar is not None:
                self.states[r] = ParseState()
        h0 = self.decoder.initial_state(zc_new)  # (layers, n, H)
        tok0 = torch.full((n,), BOS_ID, dtype=torch.long, device=zc_new.device)
        if self.h is None:
            self.h, self.token = h0, tok0
            if self.can_back:
                self.hist = h0.new_empty((self.S, self.max_len) + tuple(h0.shape[:1]) + tuple(h0.shape[2:]))
        else:
            self.h, self.token = torch.cat([self.h, h0], dim=1), torch.cat([self.token, tok0])
        self.alive = np.concatenate([self.alive, new])
        self.slot = np.concatenate([self.slot, np.asarray(new_slots, dtype=np.int64)])
        return n

    @torch.no_grad()
    def step(self) -> list[int]:
        """Admit waiting rows, advance every alive row by one token (or one backjump) → the rows
        that ended in this step (pop them)."""
        fresh = self._admit()  # the last `fresh` rows of `alive` are at their first step
        if not self.alive.size:
            return []
        grammar, max_len, temperature, backtrack = self.grammar, self.max_len, self.temperature, self.backtrack
        ids, lps, pushed, states, bans, backs = self.ids, self.lps, self.pushed, self.states, self.bans, self.backs
        alive, slot, h, can_back = self.alive, self.slot, self.h, self.can_back
        device = h.device
        alive_l = alive.tolist()
        slot_t = torch.from_numpy(slot).to(device)
        if can_back:
            now = torch.tensor([len(ids[r]) for r in alive_l], device=device)
            self.hist[slot_t, now] = h.transpose(0, 1)
        logits, h = self.decoder.step(self.token, h, self.zc[slot_t])  # (b, V)
        self.steps += 1
        self.row_steps += len(alive_l)
        logprobs = F.log_softmax(logits, dim=1)
        if self.floor_applies and fresh:  # rows at their first step: position 0
            if self.first_lp is None:
                self.first_lp = logprobs.new_full((self.S, logprobs.shape[1]), float("-inf"))
                self.start_ok = torch.from_numpy(grammar.row_mask(ParseState())).to(device)  # (V,) atoms
                self.start_ok[list(NEVER)] = False
            self.first_lp[slot_t[-fresh:]] = logprobs[-fresh:].masked_fill(~self.start_ok, float("-inf"))
        logits[:, NEVER] = float("-inf")
        kept: dict[int, float] = {}
        if grammar is None:
            picked = _pick(logits, temperature, self.top_k, self.generator)
        else:
            if self.has_bans:
                for j, r in enumerate(alive_l):
                    banned = bans[r].get(len(ids[r])) if r in self.has_bans else None
                    if banned:
                        logits[j, list(banned)] = float("-inf")
            rows_st = [states[r] for r in alive_l]
            remaining = [max_len - 2 - len(ids[r]) for r in alive_l]  # tokens left after this one, <eos> included
            # rows j that may jump at a refused pick (asked only for the few refused ones)
            may_jump = ((lambda j: bool(ids[alive_l[j]]) and backs[alive_l[j]] < REFUSED_JUMPS)
                        if can_back and self.refused_jump < 1 else None)
            pick = _pick_lazy if self.top_k == 0 else _pick_masked
            picked, kept = pick(logits, logprobs, temperature, self.top_k, self.generator, grammar, rows_st,
                                remaining, may_jump, self.refused_jump, want_kept=can_back)
        picked_l = picked.tolist()
        lp = logprobs.gather(1, picked.clamp(min=0).unsqueeze(1)).squeeze(1).tolist()
        keep, back = [], []
        advance = grammar.advance if grammar is not None else None
        for j, (r, t) in enumerate(zip(alive_l, picked_l)):
            if t < 0:
                if can_back and ids[r] and backs[r] < MAX_BACKTRACKS:
                    back.append(j)
                    keep.append(j)
                else:
                    self.status[r] = DEAD_END
                continue
            if t == EOS_ID:
                self.status[r] = COMPLETE
                lps[r].append(lp[j])
                continue
            ids[r].append(t)
            lps[r].append(lp[j])
            if can_back:
                pushed[r].append(kept.get(j, 0.0) if kept else 0.0)
            if advance is not None:
                advance(states[r], t)
            if len(ids[r]) < max_len - 1:  # else: out of tokens (the grammar's budget ends a row before)
                keep.append(j)
        ended: set[int] = set()  # greedy rows whose jump would restart them implausibly
        if back:
            h = h.clone()
            for j in back:  # jump back and re-decide position p from the kept GRU state
                r = alive_l[j]
                k = backs[r] + 1  # this row's k-th jump
                # restarting a cornered row is a fresh draw from the same latent: right when
                # sampling; a greedy decode keeps its rescue near the model's path (_jump_to)
                ok = grammar.budget_mask(states[r], max_len - 2 - len(ids[r])) if temperature > 0 else None
                p = _jump_to(ids[r], pushed[r], k, backtrack, ok is not None and not ok.all())
                if p == 0 and self.floor_applies and not _first_token_plausible(
                        self.first_lp[slot[j]], bans.get(r, {}).get(0, set()) | {ids[r][0]}, self.first_token_floor):
                    self.status[r] = DEAD_END  # only a first token the model hardly considers is left
                    ended.add(j)
                    continue
                backs[r] = k
                t_there = ids[r][p]
                del ids[r][p:], lps[r][p:], pushed[r][p:]
                if r in bans:
                    bans[r] = {q: b for q, b in bans[r].items() if q <= p}
                if temperature <= 0 or self.ban_when_sampling:  # greedy would pick it again: forbid it
                    bans.setdefault(r, {}).setdefault(p, set()).add(t_there)
                    self.has_bans.add(r)
                st = ParseState()
                for t in ids[r]:
                    grammar.advance(st, t)
                states[r] = st
                picked[j] = ids[r][-1] if ids[r] else BOS_ID
                h[:, j] = self.hist[slot[j], p]
        if ended:
            keep = [j for j in keep if j not in ended]
        done: list[int] = []
        if len(keep) < len(alive_l):  # rows that ended hand their slots on
            done = np.delete(alive, keep).tolist()
            for r in done:
                self.logp[r] = sum(lps.pop(r))  # <eos> included when complete
                pushed.pop(r), states.pop(r, None), bans.pop(r, None)
                self.has_bans.discard(r)
            self.free_slots += np.delete(slot, keep).tolist()
            keep_t = torch.tensor(keep, dtype=torch.long, device=device)
            self.alive, self.slot, self.token, self.h = alive[keep], slot[keep], picked[keep_t], h[:, keep_t]
        else:
            self.token, self.h = picked, h
        return done


def rescue_dead_ends(decoder, z: torch.Tensor, cond: torch.Tensor, max_len: int, decoded: Decoded, width: int,
                     grammar: Grammar | None, batch_size: int = 1000) -> list[int]:
    """Beam search of `width` for the rows of `decoded` (from `sample` over z (B, Z), cond (B, P))
    that did not finish: such a row takes the beam's best finished hypothesis (ids, log p, status
    "eos"), or keeps its unfinished prefix when the beam finds none. Updates `decoded` in place and
    returns the rows it rescued. For greedy decodes, where backjumping has given up (or would
    only have restarted the row with a first token the model hardly considers): the beam's answer
    is the most likely complete string it finds, the thing greedy decoding approximates (beam_best,
    batch_size live hypotheses at a time)."""
    rows = [i for i, st in enumerate(decoded.status) if st != COMPLETE]
    if not rows or width < 1:
        return []
    rescued = []
    for i, (ids, lp, st) in zip(rows, beam_best(decoder, z[rows], cond[rows], max_len, width, grammar, batch_size)):
        if st == COMPLETE:
            decoded.ids[i], decoded.status[i], decoded.logp[i] = ids, st, lp
            rescued.append(i)
    return rescued


def beam_best(decoder, z: torch.Tensor, cond: torch.Tensor, max_len: int, width: int,
              grammar: Grammar | None = None, batch_size: int = 1000) -> list[tuple[list[int], float, str]]:
    """Per row of z (B, Z), cond (B, P): the best hypothesis (ids, log p, status) of a best_only
    beam search of `width`, run on batch_size // width rows at a time (batch_size live hypotheses)."""
    step = max(1, batch_size // width)
    return [hyps[0] for i in range(0, len(z), step)
            for hyps in beam_search(decoder, z[i:i + step], cond[i:i + step], max_len, width, grammar, best_only=True)]


def _first_token_plausible(first_lp: torch.Tensor, banned: set[int], floor: float) -> bool:
    """Whether a greedy row may restart with its first token(s) `banned`: the best first token
    left (the one greedy would take) has model probability ≥ floor. first_lp (V,): the row's
    log-probabilities at position 0, -inf for tokens that may not start a string."""
    lp = first_lp.clone()
    lp[sorted(banned)] = float("-inf")
    return float(lp.max()) >= np.log(floor)


def _jumps_at_refusal(may_jump, logprobs: torch.Tensor, j: int, t: int, tau: float) -> bool:
    """Whether row j, whose pick t a lazy check refused, jumps back instead of picking again: it
    may (may_jump(j)) and the model gave t more than tau (logprobs (b, V), unmasked)."""
    return may_jump is not None and may_jump(j) and float(logprobs[j, t]) > np.log(tau)


def _pick_lazy(logits, logprobs, temperature, top_k, generator, grammar, states, remaining, may_jump, tau,
               want_kept=False) -> tuple[torch.Tensor, dict[int, float]]:
    """Draw from the unmasked logits (b, V); keep each row's draw the grammar accepts and redraw
    the others over their masked row (`_pick_masked`). The same distribution as masking first
    (sample's docstring). A row j with may_jump(j) whose draw a lazy check refused while the model
    gave it more than `tau` gets -1 (it jumps back). Returns (picked (b,), kept mass per redrawn
    row)."""
    picked = _pick(logits, temperature, 0, generator)
    redo, refused = [], []  # rows to redraw; the lazily refused token of each (-1: masked anyway)
    allowed, fits, needs_verify, verify = grammar.allowed, grammar.fits, grammar.needs_verify, grammar.verify
    for j, t in enumerate(picked.tolist()):
        st = states[j]
        if not (allowed(st, t) and fits(st, t, remaining[j])):
            redo.append(j)
            refused.append(-1)
        elif needs_verify(st, t) and not verify(st, t):
            if _jumps_at_refusal(may_jump, logprobs, j, t, tau):
                picked[j] = -1
                continue
            redo.append(j)
            refused.append(t)
    if not redo:
        return picked, {}
    sub_logits = logits[redo]
    for i, t in enumerate(refused):
        if t >= 0:
            sub_logits[i, t] = float("-inf")
    sub, kept = _pick_masked(sub_logits, logprobs[redo], temperature, 0, generator, grammar,
                             [states[j] for j in redo], [remaining[j] for j in redo], None, tau, want_kept)
    picked[redo] = sub
    return picked, {redo[i]: m for i, m in kept.items()}


def _pick_masked(logits, logprobs, temperature, top_k, generator, grammar, states, remaining, may_jump, tau,
                 want_kept=False) -> tuple[torch.Tensor, dict[int, float]]:
    """Mask every row (structural rules and length budget), draw, and redraw rows whose draw
    fails its lazy check (masked). -1: dead end (nothing allowed), or a row j with may_jump(j)
    whose refused draw the model gave more than `tau`. Returns (picked (b,), {row: log of the model's
    mass the mask left} when want_kept)."""
    mask = _apply_budget(grammar.mask(states, logits.device), grammar, states, remaining)
    logits = logits.masked_fill(~mask, float("-inf"))
    kept = {}
    if want_kept:
        kept = dict(enumerate((torch.logsumexp(logits, 1) - torch.logsumexp(logprobs, 1)).tolist()))
    dead = ~torch.isfinite(logits).any(dim=1)
    logits = logits.masked_fill(dead.unsqueeze(1), 0.0)  # keep softmax finite; result discarded
    picked = _pick(logits, temperature, top_k, generator)
    picked[dead] = -1
    todo = [j for j, t in enumerate(picked.tolist()) if t >= 0 and grammar.needs_verify(states[j], t)]
    while todo:
        again = []
        for j in todo:
            st, t = states[j], int(picked[j])
            if not grammar.verify(st, t):
                if _jumps_at_refusal(may_jump, logprobs, j, t, tau):
                    picked[j] = -1
                    continue
                logits[j, t] = float("-inf")
                again.append(j)
        if not again:
            break
        rows = torch.tensor(again, device=logits.device)
        sub = logits[rows]
        sub_dead = ~torch.isfinite(sub).any(dim=1)
        new = _pick(sub.masked_fill(sub_dead.unsqueeze(1), 0.0), temperature, top_k, generator)
        new[sub_dead] = -1
        picked[rows] = new
        todo = [j for j, t in zip(again, new.tolist()) if t >= 0 and grammar.needs_verify(states[j], t)]
    return picked, kept


@torch.no_grad()
def beam_search(decoder, z: torch.Tensor, cond: torch.Tensor, max_len: int, width: int = 5,
                grammar: Grammar | None = None, best_only: bool = False) -> list[list[tuple[list[int], float, str]]]:
    """Beam search of width K per row: for each row up to K finished hypotheses (ids, log p,
    "eos"), best first (score = total log-probability under the model's unmasked softmax, no length
    normalisation: exact reconstruction wants the most likely string, not the longest).

    Finished hypotheses keep their beam slot: each step the K - (finished) best extensions of
    the live beams survive, and one ending in <eos> is finished. So width 1 is exactly greedy,
    and a row stops when all K slots are finished or no live beam is left. Hypotheses still live
    at max_len are not answers: a row with none finished returns its best unfinished prefix alone,
    with status "max_len" or "dead_end" (reported invalid, not replaced). The grammar masks every extension; lazily checked picks that fail are masked
    and the top K recomputed.

    `best_only`: only the best finished hypothesis is wanted (a reconstruction, a rescue), so a
    row stops as soon as one of its finished hypotheses scores at least as high as every live
    beam of the row: a score only falls as a hypothesis grows, so no later one can beat it — the
    same answer as the full search, without decoding the live beams on to max_len. Returns that
    hypothesis alone per row (or the best unfinished prefix, as above).
    """
    B, K, device = z.shape[0], width, z.device
    zc = torch.cat([z, cond], dim=1)  # (B, Z+P)
    h = decoder.initial_state(zc)  # (layers, B, H): one live beam per row to start
    token = torch.full((B,), BOS_ID, dtype=torch.long, device=device)
    # live beams, flattened: row of each, score, ids, grammar state
    rows = list(range(B))
    scores = torch.zeros(B, device=device)
    seqs: list[list[int]] = [[] for _ in range(B)]
    states = [ParseState() for _ in range(B)] if grammar is not None else None
    finished: list[list[tuple[list[int], float, str]]] = [[] for _ in range(B)]
    best_open: dict[int, tuple[list[int], float, str]] = {}  # per row: best unfinished prefix so far
    for step in range(max_len - 1):
        logits, h = decoder.step(token, h, zc[rows])  # (n, V) for n live beams
        logprobs = F.log_softmax(logits, dim=1)
        cand = logprobs.clone()
        cand[:, NEVER] = float("-inf")
        if grammar is not None:
            mask = grammar.mask(states, device)
            # every live beam has `step` tokens: the same budget as sample()'s, so width 1 is greedy
            mask = _apply_budget(mask, grammar, states, [max_len - 2 - step] * len(states))
            cand = cand.masked_fill(~mask, float("-inf"))
        cand = cand + scores.unsqueeze(1)  # (n, V) total scores
        V = cand.shape[1]
        # group the live beams of each row
        by_row: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            by_row.setdefault(r, []).append(i)
        new_rows, new_parent, new_tok, new_score = [], [], [], []
        for r, beams in by_row.items():
            slots = K - len(finished[r])
            flat = cand[beams].flatten()  # (len(beams)·V,)
            chosen: list[tuple[int, int, float]] = []
            while True:
                top = torch.topk(flat, min(slots, flat.numel()))
                chosen, redo = [], False
                for s, fi in zip(top.values.tolist(), top.indices.tolist()):
                    if s == float("-inf"):
                        break
                    i, t = beams[fi // V], fi % V
                    if grammar is not None and grammar.needs_verify(states[i], t) and not grammar.verify(states[i], t):
                        flat[fi] = float("-inf")
                        redo = True
                        break
                    chosen.append((i, t, s))
                if not redo:
                    break
            if not chosen and not finished[r]:  # every extension forbidden: the row ends here
                i = max(beams, key=lambda b: float(scores[b]))
                best_open[r] = (seqs[i][:], float(scores[i]), DEAD_END)
            live = []
            for i, t, s in chosen:
                if t == EOS_ID:
                    finished[r].append((seqs[i][:], s, COMPLETE))
                else:
                    live.append((i, t, s))
            if best_only and finished[r]:
                best = max(f[1] for f in finished[r])
                if all(s <= best for _, _, s in live):
                    live = []  # settled: no live beam can finish above the best finished hypothesis
            for i, t, s in live:
                new_rows.append(r), new_parent.append(i), new_tok.append(t), new_score.append(s)
        for r, i, t, s in zip(new_rows, new_parent, new_tok, new_score):
            if r not in best_open or len(best_open[r][0]) <= len(seqs[i]):  # first (best) live beam of the row
                best_open[r] = (seqs[i] + [t], s, MAX_LEN)
        if not new_rows:
            break
        parent = torch.tensor(new_parent, device=device)
        h = h[:, parent]
        token = torch.tensor(new_tok, device=device)
        scores = torch.tensor(new_score, device=device)
        seqs = [seqs[i] + [t] for i, t in zip(new_parent, new_tok)]
        if grammar is not None:
            # a parent's last surviving child takes its state (the parent is gone after this
            # step); the others advance copies, made before it does
            left = collections.Counter(new_parent)
            new_states = []
            for i, t in zip(new_parent, new_tok):
                left[i] -= 1
                s = states[i].copy() if left[i] else states[i]
                grammar.advance(s, t)
                new_states.append(s)
            states = new_states
        rows = new_rows
    return [sorted(f, key=lambda x: -x[1])[:1 if best_only else None] if f
            else [best_open.get(r, ([], float("-inf"), DEAD_END))] for r, f in enumerate(finished)]
