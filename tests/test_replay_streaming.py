"""replay.streaming: chunked estimators agree with the batch ones (ci="normal", and
Bernstein for IPS) to 1e-9 whatever the chunking, keep their precision on large-mean,
small-variance terms, merge, and refuse what the batch API refuses."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.estimators import DEFAULT_TAU, Estimate, dm, dr, estimate_all, ips, snips, switch_dr
from replay.streaming import (
    StreamingAll,
    StreamingDM,
    StreamingDR,
    StreamingEstimator,
    StreamingIPS,
    StreamingSNIPS,
    StreamingSwitchDR,
)
from tests.test_estimators import (
    ACTIONS,
    BAD_INPUTS,
    BAD_MODEL_INPUTS,
    LOGGED_P,
    REWARD_HAT,
    REWARDS,
    TARGET_P,
    TARGET_PMF,
    random_log,
)

TOLERANCE = 1e-9
FLOATS = ("value", "lower", "upper", "se", "ess", "max_weight", "matched")


def assert_same(streamed: Estimate, batch: Estimate) -> None:
    """Every field equal; floats to 1e-9 relative (absolute below 1), NaN where the batch has NaN."""
    for name in ("method", "ci", "alpha", "n"):
        assert getattr(streamed, name) == getattr(batch, name), name
    for name in FLOATS:
        got, want = getattr(streamed, name), getattr(batch, name)
        if want is None or (isinstance(want, float) and math.isnan(want)):
            assert got is None if want is None else math.isnan(got), (name, got, want)
        else:
            assert abs(got - want) <= TOLERANCE * max(1.0, abs(want)), (name, got, want)
    assert streamed.params.keys() == batch.params.keys()
    for key, want in batch.params.items():
        assert streamed.params[key] == pytest.approx(want, rel=TOLERANCE), key


def cuts(n: int, rng: np.random.Generator) -> list[slice]:
    """A random chunking of range(n): some single events, some big chunks."""
    points = np.sort(rng.choice(np.arange(1, n), size=int(rng.integers(1, min(40, n - 1) + 1)), replace=False))
    bounds = [0, *points.tolist(), n]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


# Each method: (batch call on all the data, streaming estimator, its update on a slice).
Log = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def target_p(log: Log) -> np.ndarray:
    r, p, acts, pmf, model = log
    return pmf[np.arange(r.size), acts]


METHODS: dict[str, tuple[Callable[[Log], Estimate], Callable[[], StreamingEstimator], str]] = {
    "ips": (lambda g: ips(g[0], g[1], target_p(g), alpha=0.1), StreamingIPS, "logged"),
    "ips clip=2": (lambda g: ips(g[0], g[1], target_p(g), alpha=0.1, clip=2.0), lambda: StreamingIPS(clip=2.0),
                   "logged"),
    "snips": (lambda g: snips(g[0], g[1], target_p(g), alpha=0.1), StreamingSNIPS, "logged"),
    "dm": (lambda g: dm(g[3], g[4], alpha=0.1), StreamingDM, "model"),
    "dr": (lambda g: dr(*g, alpha=0.1), StreamingDR, "all"),
    "dr clip=3": (lambda g: dr(*g, alpha=0.1, clip=3.0), lambda: StreamingDR(clip=3.0), "all"),
    "switch_dr tau=4": (lambda g: switch_dr(*g, tau=4.0, alpha=0.1), lambda: StreamingSwitchDR(tau=4.0), "all"),
    "switch_dr tau=0": (lambda g: switch_dr(*g, tau=0.0, alpha=0.1), lambda: StreamingSwitchDR(tau=0.0), "all"),
}


def feed(estimator: Any, kind: str, log: Log, part: slice) -> None:
    r, p, acts, pmf, model = (array[part] for array in log)
    if kind == "logged":
        estimator.update(r, p, pmf[np.arange(r.size), acts])
    elif kind == "model":
        estimator.update(pmf, model)
    else:
        estimator.update(r, p, acts, pmf, model)


def streamed(method: str, log: Log, parts: list[slice]) -> Estimate:
    _, make, kind = METHODS[method]
    estimator = make()
    for part in parts:
        feed(estimator, kind, log, part)
    return estimator.result(alpha=0.1)


@pytest.mark.parametrize("deterministic", [False, True], ids=["stochastic", "deterministic"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_agrees_with_batch_over_random_chunkings(method, deterministic):
    log = random_log(21 + deterministic, n=2000, k=4, deterministic=deterministic)
    want = METHODS[method][0](log)
    rng = np.random.default_rng(5)
    for _ in range(5):
        assert_same(streamed(method, log, cuts(2000, rng)), want)
    assert_same(streamed(method, log, [slice(i, i + 1) for i in range(2000)]), want)   # one event at a time


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 199), max_size=12), st.booleans())
def test_any_chunking_gives_the_batch_answer(points, deterministic):
    log = random_log(3, n=200, deterministic=deterministic)
    bounds = [0, *sorted(set(points)), 200]
    parts = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
    for method in ("ips", "snips", "dr", "switch_dr tau=4"):
        assert_same(streamed(method, log, parts), METHODS[method][0](log))


@pytest.mark.parametrize("deterministic", [False, True], ids=["stochastic", "deterministic"])
def test_streaming_all_is_estimate_all_and_merges(deterministic):
    log = random_log(8, n=3000, k=5, deterministic=deterministic)
    want = estimate_all(*log, alpha=0.05)
    left, right = StreamingAll(), StreamingAll()
    for i, part in enumerate(cuts(3000, np.random.default_rng(1))):
        (left if i % 2 else right).update(*(array[part] for array in log))   # interleaved: order-free
    got = left.merge(right).result()
    assert set(got) == set(want) and left.n == 3000
    for name in want:
        assert_same(got[name], want[name])
    assert got["switch_dr"].params["tau"] == DEFAULT_TAU


def test_bernstein_for_ips_matches_batch():
    r, p, acts, pmf, model = random_log(4, n=1500)
    r = np.clip(r, -1.0, 2.0)
    t = pmf[np.arange(r.size), acts]
    for options in ({"bounds": (-1.0, 2.0)}, {"bounds": (-1.0, 2.0), "clip": 3.0}):
        estimator = StreamingIPS(**options)
        for part in cuts(r.size, np.random.default_rng(2)):
            estimator.update(r[part], p[part], t[part])
        assert_same(estimator.result(0.05, "bernstein"), ips(r, p, t, ci="bernstein", **options))
    estimator = StreamingIPS().update(r[:700], p[:700], t[:700]).update(r[700:], p[700:], t[700:])
    with pytest.warns(UserWarning, match="bounds not given"):
        got = estimator.result(ci="bernstein")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same(got, ips(r, p, t, ci="bernstein"))


def test_nothing_matched_and_single_event_give_nan_like_batch():
    r, p = np.array([1.0, 0.0, 2.0]), np.array([0.5, 0.5, 0.25])
    zero = np.zeros(3)
    assert_same(StreamingSNIPS().update(r[:1], p[:1], zero[:1]).update(r[1:], p[1:], zero[1:]).result(),
                snips(r, p, zero))
    for make, batch in ((StreamingIPS, ips), (StreamingSNIPS, snips)):
        assert_same(make().update(r[:1], p[:1], [1.0]).result(), batch(r[:1], p[:1], [1.0]))


def test_precision_with_a_large_mean_and_a_small_variance():
    """10⁶ terms of mean 10⁸ and sd 10⁻³, in 1000 chunks: M2 (so the standard error) to
    1e-12 of the exact value, where Σx² − n·mean² loses every digit and Chan's
    update without the shift by 5e-8 (each chunk's mean is rounded to the ulp of 10⁸)."""
    rng = np.random.default_rng(0)
    x = 1e8 + rng.normal(0.0, 1e-3, 10**6)
    ones = np.ones_like(x)
    rounded_mean = math.fsum(x) / x.size
    deviations = x - rounded_mean                       # exact (Sterbenz)
    offset = math.fsum(deviations) / x.size             # the true mean − rounded_mean
    exact_m2 = math.fsum(deviations * deviations) - x.size * offset * offset
    exact_se = math.sqrt(exact_m2 / (x.size - 1) / x.size)
    naive_m2 = math.fsum(x * x) - x.size * rounded_mean**2
    assert abs(naive_m2 / exact_m2 - 1) > 0.5   # the trap is real: here every digit is lost
    ips_stream, snips_stream = StreamingIPS(), StreamingSNIPS()
    weights = rng.uniform(0.2, 1.0, x.size)   # SNIPS: w = target_p / 1
    for part in np.array_split(np.arange(x.size), 1000):
        ips_stream.update(x[part], ones[part], ones[part])
        snips_stream.update(x[part], ones[part], weights[part])
    got = ips_stream.result()
    assert got.value == pytest.approx(rounded_mean + offset, rel=1e-15)
    assert got.se == pytest.approx(exact_se, rel=1e-12)
    assert_same(got, ips(x, ones, ones))                  # the batch API: 7e-12 from exact here
    assert_same(snips_stream.result(), snips(x, ones, weights))


# ---------------------------------------------------------------- invalid input


def calls(args: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    """Every streaming update that takes these arguments, as in tests/test_estimators."""
    logged = (args["rewards"], args["logged_p"], args.get("target_p", TARGET_P))
    model = (args["rewards"], args["logged_p"], args["actions"], args["target_pmf"], args["reward_hat"])
    yield lambda: StreamingIPS().update(*logged)
    yield lambda: StreamingSNIPS().update(*logged)
    for make in (StreamingDR, StreamingAll, lambda: StreamingSwitchDR(tau=3)):
        yield lambda make=make: make().update(*model)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_invalid_logged_inputs_raise(case):
    args, name = BAD_INPUTS[case]
    for call in calls(args):
        if case == "empty":   # an empty chunk is a no-op; a result without samples is the error
            with pytest.raises(ValueError, match="no samples"):
                call().result()
            continue
        with pytest.raises(ValueError, match=name):
            call()


@pytest.mark.parametrize("case", sorted(BAD_MODEL_INPUTS))
def test_invalid_model_inputs_raise(case):
    args, name = BAD_MODEL_INPUTS[case]
    updates = list(calls(args))[2:]
    if name != "actions":
        updates.append(lambda: StreamingDM().update(args["target_pmf"], args["reward_hat"]))
    for call in updates:
        with pytest.raises(ValueError, match=name):
            call()


def test_a_bad_chunk_leaves_the_estimator_unchanged():
    estimator = StreamingAll().update(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT)
    before = estimator.result()
    with pytest.raises(ValueError, match="logged_p"):
        estimator.update(REWARDS, [0.5, 0.0, 0.2, 0.5, 0.4], ACTIONS, TARGET_PMF, REWARD_HAT)
    bounded = StreamingIPS(bounds=(0.0, 1.0)).update(REWARDS, LOGGED_P, TARGET_P)
    with pytest.raises(ValueError, match="bounds"):
        bounded.update([2.0], [0.5], [1.0])
    assert estimator.result() == before and bounded.n == 5


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: StreamingIPS(clip=0), "clip"),
        (lambda: StreamingDR(clip=math.nan), "clip"),
        (lambda: StreamingSwitchDR(tau=-1), "tau"),
        (lambda: StreamingSwitchDR(tau=None), "tau"),  # type: ignore[arg-type]
        (lambda: StreamingIPS(bounds=(1, 0)), "bounds"),
        (lambda: StreamingIPS().update(REWARDS, LOGGED_P, TARGET_P).result(ci="bootstrap"), "bootstrap"),
        (lambda: StreamingAll().update(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT).result(ci="bootstrap"),
         "bootstrap"),
        (lambda: StreamingDR().update(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT).result(ci="bernstein"),
         "bernstein"),
        (lambda: StreamingSNIPS().update(REWARDS, LOGGED_P, TARGET_P).result(ci="bernstein"), "bernstein"),
        (lambda: StreamingIPS().update(REWARDS, LOGGED_P, TARGET_P).result(ci="wald"), "ci"),
        (lambda: StreamingIPS().update(REWARDS, LOGGED_P, TARGET_P).result(alpha=1.5), "alpha"),
        (lambda: StreamingDM().update(TARGET_PMF, REWARD_HAT).result(alpha=math.nan), "alpha"),
        (lambda: StreamingDR(clip=2.0).merge(StreamingDR()), "merge"),
        (lambda: StreamingIPS().merge(StreamingSNIPS()), "merge"),  # type: ignore[arg-type]
    ],
)
def test_invalid_options_raise(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
