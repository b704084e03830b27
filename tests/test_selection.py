"""The weight search: relative weights, extension past an edge, one rule with or without a target."""
import numpy as np
import pytest

from inr_utils import selection
from inr_utils.metrics import psnr
from inr_utils.selection import SearchSpec, data_scale, select_weights


def _toy(acq, best_log_lambda, best_log_mu=None):
    """A reconstructor whose PSNR peaks at the given absolute weights: it returns the target
    plus an error growing with the log-distance to the optimum; calls are recorded."""
    calls = []

    def reconstruct(op, y, lam, mu, target):
        calls.append((lam, mu))
        d = (np.log10(lam) - best_log_lambda) ** 2
        if best_log_mu is not None:
            d += (np.log10(mu) - best_log_mu) ** 2 if mu > 0 else 10.0
        noise = np.random.default_rng(0).standard_normal(acq.target.shape).astype(np.float32)
        return acq.target + (0.01 + 0.05 * d) * noise, None

    return reconstruct, calls


def test_search_extends_past_an_edge_on_a_toy_objective(tiny_acq):
    scale = data_scale(tiny_acq.zero_filled())
    best = np.log10(scale) - 0.5  # relative optimum -0.5, far right of the starting candidates
    rec, calls = _toy(tiny_acq, best)
    sel = select_weights(rec, tiny_acq, SearchSpec(log_lambdas=(-3.0, -2.5, -2.0), max_extend=5))
    assert sel.log_lambda == pytest.approx(-0.5) and not sel.at_edge
    tried = sorted(t["log_lambda"] for t in sel.trials)
    assert tried == [-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0]  # extended one step at a time, no repeats
    assert len(calls) == len(tried)
    assert psnr(sel.recon, tiny_acq.target) == max(t["score"] for t in sel.trials)


def test_search_reports_an_edge_when_extensions_run_out(tiny_acq):
    rec, _ = _toy(tiny_acq, np.log10(data_scale(tiny_acq.zero_filled())) + 3)
    sel = select_weights(rec, tiny_acq, SearchSpec(log_lambdas=(-3.0, -2.5), max_extend=2))
    assert sel.log_lambda == pytest.approx(-1.5) and sel.at_edge


def test_search_over_both_weights(tiny_acq):
    s = np.log10(data_scale(tiny_acq.zero_filled()))
    rec, _ = _toy(tiny_acq, s - 3.0, s - 4.5)
    sel = select_weights(rec, tiny_acq, SearchSpec(log_lambdas=(-3.5, -3.0, -2.5), log_mus=(-4.0, -3.5, -3.0)))
    assert (sel.log_lambda, sel.log_mu) == pytest.approx((-3.0, -4.5)) and not sel.at_edge
    lam, mu = sel.weights
    assert np.log10(lam) == pytest.approx(s - 3.0) and np.log10(mu) == pytest.approx(s - 4.5)


def test_weights_follow_the_data_scale(tiny_acq):
    """Scaling the k-space by c scales the absolute weights by c; the relative choice is unchanged."""
    import dataclasses

    s = np.log10(data_scale(tiny_acq.zero_filled()))
    scaled = dataclasses.replace(tiny_acq, kspace=tiny_acq.kspace * 100, target=tiny_acq.target * 100)
    assert np.log10(data_scale(scaled.zero_filled())) == pytest.approx(s + 2)
    with pytest.raises(ValueError, match="no finite positive peak"):
        data_scale(np.zeros((2, 4, 4)))


def test_without_target_the_holdout_rule_refits_on_all_lines(tiny_acq):
    import dataclasses

    acq = dataclasses.replace(tiny_acq, target=None)
    seen = []

    def reconstruct(op, y, lam, mu, target):
        seen.append(int(op.mask.sum()))
        return acq.zero_filled(), None

    sel = select_weights(reconstruct, acq, SearchSpec(log_lambdas=(-3.0,)))
    assert seen[-1] == int(acq.mask.sum()) and all(n < seen[-1] for n in seen[:-1])
    assert "held-out" in sel.rule and sel.trials[0]["score"] > 0


@pytest.mark.parametrize("kw,match", [({"log_lambdas": ()}, "log_lambdas"), ({"log_mus": [float("nan")]}, "log_mus"),
                                      ({"step": 0}, "step"), ({"max_extend": -1}, "max_extend")])
def test_bad_search_specs_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        SearchSpec(**kw)


def test_holdout_split():
    mask = np.zeros((4, 64), np.uint8)
    mask[:, ::2] = 1
    fit_mask, hold = selection.split_lines(mask, 0.2, seed=0)
    assert not np.any(fit_mask & hold) and np.array_equal(fit_mask | hold, mask)
    assert hold.sum() > 0 and not hold[:, 28:36].any()


def test_fit_at_given_weights_is_one_fit_without_a_search(tiny_acq):
    reconstruct, calls = _toy(tiny_acq, -3.0, -4.0)
    sel = selection.fit_at(reconstruct, tiny_acq, -2.5, -4.0)
    scale = data_scale(tiny_acq.zero_filled())
    assert len(calls) == 1 and np.allclose(calls[0], (10 ** -2.5 * scale, 1e-4 * scale))
    assert (sel.log_lambda, sel.log_mu, sel.at_edge, len(sel.trials)) == (-2.5, -4.0, False, 1)
    assert sel.trials[0]["score"] == pytest.approx(psnr(sel.recon, tiny_acq.target))
