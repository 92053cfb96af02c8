"""Replacing the optimizer's decoder in tests with a function of the latents (fixed strings, a cycle)."""
from __future__ import annotations


def fake_point_decoder(monkeypatch, fake) -> None:
    """Make the optimizer decode through `fake(bundle, z, props, temperature=0.0, **kw)` → strings:
    each start's greedy decodes in one call when it pushes its points (design.optimize.points.
    PointStream), its sampled decodes in one more call per start, as the real stream makes them."""
    import moldesign.design.optimize.points as points
    from moldesign.model.surrogate import split_input

    def push(self, key, u, generator=None):
        z, cond = split_input(self.bundle, u)
        greedy = points.decode(self.bundle, z, cond, temperature=0.0) if len(u) else []
        self._ready.append((key, self._with_samples(greedy, z, cond, generator)))

    monkeypatch.setattr(points, "decode", fake)
    monkeypatch.setattr(points.PointStream, "push", push)
