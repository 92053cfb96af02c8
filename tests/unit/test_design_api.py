"""api.Designer is a facade over moldesign/design/: each method hands its call to one function
there with the same parameters, the public names stay importable from moldesign.api, and a
warning raised deep in the design code points at the caller's line."""
import inspect
import warnings

import numpy as np
import pytest

from moldesign import api
from moldesign.design import encoding, generate, interpolate, leads, raw
from moldesign.errors import DesignWarning

# Designer method -> (design function, its leading parameters the facade fills from the Designer)
FACADE = {
    "encode": (encoding.encode_molecules, ("bundle",)),
    "decode": (encoding.decode_latents, ("bundle",)),
    "generate": (generate.generate, ("bundle",)),
    "generate_batch": (generate.generate_batch, ("bundle",)),
    "generate_raw_chunks": (raw.generate_raw_chunks, ("bundle",)),
    "generate_raw_to": (raw.generate_raw_to, ("bundle", "path")),
    "interpolate": (interpolate.interpolate, ("bundle",)),
    "optimize": (leads.optimize_start, ("bundle", "path")),
    "optimize_batch": (leads.optimize_batch, ("bundle", "path")),
    "baseline": (leads.baseline, ("bundle",)),
}


def _params(fn, skip: tuple[str, ...]) -> list[tuple]:
    ps = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in ps[: len(skip)]] == list(skip)
    return [(p.name, p.kind, "a function" if callable(p.default) else p.default) for p in ps[len(skip):]]


@pytest.mark.parametrize("method", sorted(FACADE))
def test_designer_methods_have_the_parameters_of_their_design_function(method):
    fn, leading = FACADE[method]
    # same names, kinds and defaults: a default changed on one side only would be a silent split
    assert _params(getattr(api.Designer, method), ("self",)) == _params(fn, leading)


def test_public_names_stay_importable_from_api():
    names = ["BATCH_COLUMNS", "DEFAULT_MODEL", "DEFAULT_OVERSAMPLE", "DesignInputError", "DesignWarning", "Designer",
             "GENERATE_COLUMNS", "ID_COLUMNS", "NothingValid", "OPTIMIZE_BATCH_COLUMNS", "Objective", "OptimizeResult",
             "RAW_CHUNK", "RAW_COLUMNS", "SEED_FILE_SUFFIXES", "Sanity", "Seed", "generate_grid", "generate_plot",
             "interpolate_grid", "interpolate_plot", "is_seed_file", "load", "optimize_grid", "read_seeds",
             "read_starts", "surrogate_training_smiles", "user_input_errors"]
    assert set(names) <= set(api.__all__) and [n for n in api.__all__ if not hasattr(api, n)] == []


def test_warnings_point_at_the_callers_line(tiny_bundle):
    d = api.Designer(tiny_bundle)
    hi = float(tiny_bundle.property_stats["max"][1])  # logp just above the training range: warned, accepted
    calls = [lambda: d.molecule("CC(=O)[O-].[Na+]"),  # standardized, outside the training ranges
             lambda: d.decode(np.zeros((1, 16)), conditions={"logp": hi + 0.1}),
             lambda: d.generate_raw_chunks(n=2, logp=hi + 0.1)]  # warned when called, before any decode
    for call in calls:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        found = [w for w in caught if issubclass(w.category, DesignWarning)]
        assert found and {w.filename for w in found} == {__file__}
