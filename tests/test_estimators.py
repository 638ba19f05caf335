"""Off-policy estimators: hand-computed values, an independent loop implementation,
the three interval kinds, coverage on a synthetic problem with a known true value, and
input validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from replay import estimators as est
from replay.estimators import Estimate, difference_of_means, dm, dr, estimate_all, ips, snips, switch_dr
from replay.intervals import bernstein_ci, bootstrap_ci, normal_ci

EXACT = {"rel": 0, "abs": 1e-9}

# ---------------------------------------------------------------- hand-computed fixture
# n = 5 events, K = 3 actions.
REWARDS = [1.0, 0.0, 1.0, 0.5, 0.0]
ACTIONS = [0, 1, 2, 0, 2]
LOGGED_P = [0.5, 0.25, 0.2, 0.5, 0.4]
TARGET_PMF = [
    [0.7, 0.2, 0.1],
    [0.1, 0.6, 0.3],
    [0.0, 0.0, 1.0],
    [0.2, 0.3, 0.5],
    [1.0, 0.0, 0.0],
]
REWARD_HAT = [
    [0.8, 0.3, 0.5],
    [0.2, 0.1, 0.4],
    [0.6, 0.2, 0.9],
    [0.4, 0.5, 0.3],
    [0.3, 0.7, 0.2],
]
TARGET_P = [0.7, 0.6, 1.0, 0.2, 0.0]   # TARGET_PMF at the logged action, read off by hand
W = [0.7 / 0.5, 0.6 / 0.25, 1.0 / 0.2, 0.2 / 0.5, 0.0 / 0.4]   # 1.4, 2.4, 5, 0.4, 0
DM_TERMS = [
    0.7 * 0.8 + 0.2 * 0.3 + 0.1 * 0.5,
    0.1 * 0.2 + 0.6 * 0.1 + 0.3 * 0.4,
    1.0 * 0.9,
    0.2 * 0.4 + 0.3 * 0.5 + 0.5 * 0.3,
    1.0 * 0.3,
]
RESIDUALS = [1.0 - 0.8, 0.0 - 0.1, 1.0 - 0.9, 0.5 - 0.4, 0.0 - 0.2]   # r_i - r̂(x_i, a_i)


def test_ips_by_hand():
    expected = (1.4 * 1.0 + 2.4 * 0.0 + 5.0 * 1.0 + 0.4 * 0.5 + 0.0 * 0.0) / 5
    result = ips(REWARDS, LOGGED_P, TARGET_P)
    assert result.value == pytest.approx(expected, **EXACT)
    assert result.method == "ips" and result.ci == "normal" and result.n == 5
    assert result.max_weight == pytest.approx(5.0, **EXACT)
    assert result.ess == pytest.approx((1.4 + 2.4 + 5.0 + 0.4) ** 2 / (1.4**2 + 2.4**2 + 5.0**2 + 0.4**2), **EXACT)
    assert result.matched == pytest.approx(4 / 5, **EXACT)


def test_clipped_ips_by_hand():
    expected = (1.4 * 1.0 + 2.0 * 0.0 + 2.0 * 1.0 + 0.4 * 0.5 + 0.0) / 5
    result = ips(REWARDS, LOGGED_P, TARGET_P, clip=2.0)
    assert result.value == pytest.approx(expected, **EXACT)
    assert result.max_weight == 2.0 and result.params == {"clip": 2.0}


def test_snips_by_hand():
    value = (1.4 * 1.0 + 2.4 * 0.0 + 5.0 * 1.0 + 0.4 * 0.5) / (1.4 + 2.4 + 5.0 + 0.4 + 0.0)
    result = snips(REWARDS, LOGGED_P, TARGET_P)
    assert result.value == pytest.approx(value, **EXACT)
    # delta method: d_i = w_i (r_i - V) / mean(w)
    mean_w = (1.4 + 2.4 + 5.0 + 0.4 + 0.0) / 5
    d = [w * (r - value) / mean_w for w, r in zip(W, REWARDS)]
    d_mean = sum(d) / 5
    se = math.sqrt(sum((x - d_mean) ** 2 for x in d) / 4) / math.sqrt(5)
    z = stats.norm.ppf(0.975)
    assert result.se == pytest.approx(se, **EXACT)
    assert (result.lower, result.upper) == pytest.approx((value - z * se, value + z * se), **EXACT)


def test_dm_by_hand():
    expected = (
        (0.7 * 0.8 + 0.2 * 0.3 + 0.1 * 0.5)
        + (0.1 * 0.2 + 0.6 * 0.1 + 0.3 * 0.4)
        + 0.9
        + (0.2 * 0.4 + 0.3 * 0.5 + 0.5 * 0.3)
        + 0.3
    ) / 5
    result = dm(TARGET_PMF, REWARD_HAT)
    assert result.value == pytest.approx(expected, **EXACT)
    assert result.ess == 5 and result.max_weight is None and result.matched is None


def test_dr_by_hand():
    expected = (
        (0.7 * 0.8 + 0.2 * 0.3 + 0.1 * 0.5) + 1.4 * (1.0 - 0.8)
        + (0.1 * 0.2 + 0.6 * 0.1 + 0.3 * 0.4) + 2.4 * (0.0 - 0.1)
        + 0.9 + 5.0 * (1.0 - 0.9)
        + (0.2 * 0.4 + 0.3 * 0.5 + 0.5 * 0.3) + 0.4 * (0.5 - 0.4)
        + 0.3 + 0.0 * (0.0 - 0.2)
    ) / 5
    result = dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT)
    assert result.value == pytest.approx(expected, **EXACT)
    assert result.matched == pytest.approx(0.8, **EXACT)


def test_clipped_dr_by_hand():
    expected = sum(DM_TERMS[i] + min(W[i], 2.0) * RESIDUALS[i] for i in range(5)) / 5
    assert dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, clip=2.0).value == pytest.approx(expected, **EXACT)


def test_switch_dr_by_hand():
    # tau = 2: samples 1 (w = 2.4) and 2 (w = 5) fall back to the DM term
    expected = (
        DM_TERMS[0] + 1.4 * (1.0 - 0.8)
        + DM_TERMS[1]
        + DM_TERMS[2]
        + DM_TERMS[3] + 0.4 * (0.5 - 0.4)
        + DM_TERMS[4] + 0.0
    ) / 5
    result = switch_dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, tau=2.0)
    assert result.value == pytest.approx(expected, **EXACT)
    assert result.params == {"tau": 2.0, "switched": pytest.approx(2 / 5)}
    assert result.max_weight == pytest.approx(1.4, **EXACT)


def test_switch_dr_limits_are_dr_and_dm():
    args = (REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT)
    assert switch_dr(*args, tau=math.inf).value == pytest.approx(dr(*args).value, **EXACT)
    assert switch_dr(*args, tau=0.0).value == pytest.approx(dm(TARGET_PMF, REWARD_HAT).value, **EXACT)


def test_dr_with_zero_model_is_ips():
    zero = np.zeros((5, 3))
    assert dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, zero).value == pytest.approx(
        ips(REWARDS, LOGGED_P, TARGET_P).value, **EXACT
    )


def test_normal_ci_matches_hand_formula():
    terms = [1.4 * 1.0, 2.4 * 0.0, 5.0 * 1.0, 0.4 * 0.5, 0.0]
    mean = sum(terms) / 5
    sd = math.sqrt(sum((t - mean) ** 2 for t in terms) / (5 - 1))
    for alpha in (0.05, 0.1, 0.01):
        z = stats.norm.ppf(1 - alpha / 2)
        expected = (mean - z * sd / math.sqrt(5), mean + z * sd / math.sqrt(5))
        result = ips(REWARDS, LOGGED_P, TARGET_P, alpha=alpha)
        assert (result.lower, result.upper) == pytest.approx(expected, **EXACT)
        assert result.se == pytest.approx(sd / math.sqrt(5), **EXACT)
        assert normal_ci(terms, alpha) == pytest.approx(expected, **EXACT)


def test_padded_candidates_ignore_reward_hat_padding():
    # event 2 had only two candidates: slot 2 padded with zero probability and NaN model
    pmf = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]
    model = [[0.4, 0.6, math.nan], [0.1, 0.2, 0.3]]
    result = dr([1.0, 0.0], [0.5, 0.25], [1, 2], pmf, model)
    expected = ((0.5 * 0.4 + 0.5 * 0.6) + (0.5 / 0.5) * (1.0 - 0.6) + (0.2 * 0.1 + 0.3 * 0.2 + 0.5 * 0.3) + (0.5 / 0.25) * (0.0 - 0.3)) / 2
    assert result.value == pytest.approx(expected, **EXACT)
    assert dm(pmf, model).value == pytest.approx(((0.5 * 0.4 + 0.5 * 0.6) + (0.2 * 0.1 + 0.3 * 0.2 + 0.5 * 0.3)) / 2, **EXACT)


# ---------------------------------------------------------------- independent loop implementation


def loop_ips(r, p, t):
    return sum(t[i] / p[i] * r[i] for i in range(len(r))) / len(r)


def loop_snips(r, p, t):
    num = den = 0.0
    for i in range(len(r)):
        num += t[i] / p[i] * r[i]
        den += t[i] / p[i]
    return num / den


def loop_dm_term(pmf_row, model_row):
    return sum(pmf_row[a] * model_row[a] for a in range(len(pmf_row)))


def loop_dr_terms(r, p, acts, pmf, model, tau=math.inf):
    terms = []
    for i in range(len(r)):
        a = acts[i]
        w = pmf[i][a] / p[i]
        correction = w * (r[i] - model[i][a]) if w <= tau else 0.0
        terms.append(loop_dm_term(pmf[i], model[i]) + correction)
    return terms


def loop_normal_ci(terms, alpha):
    n = len(terms)
    mean = sum(terms) / n
    sd = math.sqrt(sum((t - mean) ** 2 for t in terms) / (n - 1))
    half = stats.norm.ppf(1 - alpha / 2) * sd / math.sqrt(n)
    return mean - half, mean + half


def random_log(seed, n=1000, k=3, deterministic=False):
    rng = np.random.default_rng(seed)
    logging = rng.dirichlet(np.ones(k), size=n) * 0.9 + 0.1 / k
    actions = np.array([rng.choice(k, p=row) for row in logging])
    logged_p = logging[np.arange(n), actions]
    if deterministic:
        target = np.eye(k)[rng.integers(0, k, size=n)]
    else:
        target = rng.dirichlet(np.ones(k), size=n)
    model = rng.random((n, k))
    rewards = rng.normal(loc=model[np.arange(n), actions], scale=1.0)
    return rewards, logged_p, actions, target, model


@pytest.mark.parametrize("deterministic", [False, True])
def test_agrees_with_loop_implementation(deterministic):
    r, p, acts, pmf, model = random_log(7 + deterministic, deterministic=deterministic)
    r_l, p_l, a_l, pmf_l, model_l = r.tolist(), p.tolist(), acts.tolist(), pmf.tolist(), model.tolist()
    t_l = [pmf_l[i][a_l[i]] for i in range(len(r_l))]
    alpha = 0.1

    ips_terms = [t_l[i] / p_l[i] * r_l[i] for i in range(len(r_l))]
    got = ips(r, p, t_l, alpha=alpha)
    assert got.value == pytest.approx(loop_ips(r_l, p_l, t_l), **EXACT)
    assert (got.lower, got.upper) == pytest.approx(loop_normal_ci(ips_terms, alpha), **EXACT)

    assert snips(r, p, t_l).value == pytest.approx(loop_snips(r_l, p_l, t_l), **EXACT)

    dm_terms = [loop_dm_term(pmf_l[i], model_l[i]) for i in range(len(r_l))]
    got = dm(pmf, model, alpha=alpha)
    assert got.value == pytest.approx(sum(dm_terms) / len(dm_terms), **EXACT)
    assert (got.lower, got.upper) == pytest.approx(loop_normal_ci(dm_terms, alpha), **EXACT)

    for tau, estimate in ((math.inf, dr(r, p, acts, pmf, model, alpha=alpha)),
                          (4.0, switch_dr(r, p, acts, pmf, model, tau=4.0, alpha=alpha))):
        terms = loop_dr_terms(r_l, p_l, a_l, pmf_l, model_l, tau)
        assert estimate.value == pytest.approx(sum(terms) / len(terms), **EXACT)
        assert (estimate.lower, estimate.upper) == pytest.approx(loop_normal_ci(terms, alpha), **EXACT)


def test_estimate_all_matches_individual_calls():
    r, p, acts, pmf, model = random_log(3, n=300)
    t = pmf[np.arange(300), acts]
    everything = estimate_all(r, p, acts, pmf, model, alpha=0.1)
    assert set(everything) == {"ips", "snips", "dm", "dr", "switch_dr"}
    assert everything["ips"] == ips(r, p, t, alpha=0.1)
    assert everything["snips"] == snips(r, p, t, alpha=0.1)
    assert everything["dm"] == dm(pmf, model, alpha=0.1)
    assert everything["dr"] == dr(r, p, acts, pmf, model, alpha=0.1)
    assert everything["switch_dr"] == switch_dr(r, p, acts, pmf, model, tau=est.DEFAULT_TAU, alpha=0.1)
    booted = estimate_all(r, p, acts, pmf, model, ci="bootstrap", rng=5)
    assert booted == estimate_all(r, p, acts, pmf, model, ci="bootstrap", rng=5)


# ---------------------------------------------------------------- intervals


def test_bootstrap_is_reproducible_and_sensible():
    r, p, acts, pmf, model = random_log(11, n=2000)
    t = pmf[np.arange(2000), acts]
    first = ips(r, p, t, ci="bootstrap", rng=42)
    assert first == ips(r, p, t, ci="bootstrap", rng=np.random.default_rng(42))
    assert first != ips(r, p, t, ci="bootstrap", rng=43)
    assert first.lower < first.value < first.upper and first.params == {"n_boot": 1000}
    normal = ips(r, p, t)
    assert first.upper - first.lower == pytest.approx(normal.upper - normal.lower, rel=0.15)
    for estimate in (snips(r, p, t, ci="bootstrap", rng=1), dr(r, p, acts, pmf, model, ci="bootstrap", rng=1)):
        assert estimate.lower < estimate.value < estimate.upper


def test_bootstrap_chunks_do_not_change_the_draws(monkeypatch):
    terms = np.random.default_rng(0).normal(size=50)
    whole = bootstrap_ci(terms, n_boot=250, rng=9)
    monkeypatch.setattr("replay.intervals._CHUNK_ROWS", 7)
    assert bootstrap_ci(terms, n_boot=250, rng=9) == whole


def test_bootstrap_ratio_matches_a_loop():
    num, den = np.array([1.0, 2.0, 0.0, 3.0]), np.array([1.0, 2.0, 1.0, 0.5])
    rng = np.random.default_rng(3)
    index = rng.integers(0, 4, size=(20, 4))
    expected = [sum(num[i] for i in row) / sum(den[i] for i in row) for row in index.tolist()]
    got = est.bootstrap_ci(num, 0.5, denominator=den, n_boot=20, rng=3)
    assert got == pytest.approx(tuple(np.quantile(expected, [0.25, 0.75])), **EXACT)


def test_bernstein_contains_the_value_and_is_wider():
    r, p, acts, pmf, _ = random_log(5, n=2000, deterministic=True)
    r = (r > 0.5).astype(float)
    t = pmf[np.arange(2000), acts]
    normal = ips(r, p, t, bounds=(0, 1))
    bern = ips(r, p, t, ci="bernstein", bounds=(0, 1))
    assert bern.value == normal.value
    assert bern.lower <= normal.value <= bern.upper
    assert bern.lower < normal.lower and bern.upper > normal.upper
    # by hand: terms in [0, w_max]; δ = α/2 on each side
    terms = (t / p) * r
    log_term = math.log(2 / 0.025)
    w_max = (t / p).max()
    half = math.sqrt(2 * terms.var(ddof=1) * log_term / 2000) + 7 * w_max * log_term / (3 * 1999)
    assert (bern.lower, bern.upper) == pytest.approx((max(0.0, terms.mean() - half), terms.mean() + half), **EXACT)
    with pytest.warns(UserWarning, match="bounds"):
        inferred = ips(r, p, t, ci="bernstein")
    assert inferred.lower == pytest.approx(bern.lower, **EXACT)
    clipped = ips(r, p, t, ci="bernstein", bounds=(0, 1), clip=100.0)
    assert clipped.upper - clipped.lower > bern.upper - bern.lower   # the a-priori bound is larger


def test_bernstein_rejects_out_of_range_terms():
    with pytest.raises(ValueError, match="bounds"):
        bernstein_ci([0.5, 2.0], bounds=(0, 1))


@pytest.mark.parametrize(
    "call",
    [
        lambda: snips(REWARDS, LOGGED_P, TARGET_P, ci="bernstein"),
        lambda: dm(TARGET_PMF, REWARD_HAT, ci="bernstein"),
        lambda: dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, ci="bernstein"),
        lambda: switch_dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, tau=3, ci="bernstein"),
        lambda: estimate_all(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, ci="bernstein"),
    ],
)
def test_bernstein_unsupported_raises(call):
    with pytest.raises(ValueError, match="bernstein"):
        call()


def test_difference_of_means_is_welch():
    a, b = [1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    mean_a, mean_b = 3 / 4, 2 / 6
    var_a = sum((x - mean_a) ** 2 for x in a) / 3
    var_b = sum((x - mean_b) ** 2 for x in b) / 5
    se = math.sqrt(var_a / 4 + var_b / 6)
    z = stats.norm.ppf(0.95)
    result = difference_of_means(a, b, alpha=0.1)
    assert result.value == pytest.approx(mean_a - mean_b, **EXACT)
    assert (result.lower, result.upper) == pytest.approx((mean_a - mean_b - z * se, mean_a - mean_b + z * se), **EXACT)
    assert result.n == 10 and result.method == "difference_of_means"


def test_to_json_is_plain():
    result = snips([1.0, 0.0], [0.5, 0.5], [0.0, 0.0])   # nothing matched: NaN value
    assert math.isnan(result.value) and result.matched == 0
    payload = result.to_json()
    assert payload["value"] is None and payload["method"] == "snips"
    json.dumps(payload, allow_nan=False)
    full = ips(REWARDS, LOGGED_P, TARGET_P, ci="bernstein", bounds=(0, 1)).to_json()
    assert json.loads(json.dumps(full, allow_nan=False)) == full
    assert set(full) >= {"value", "lower", "upper", "alpha", "method", "ci", "n", "ess", "max_weight", "matched"}
    with pytest.raises(AttributeError):
        result.value = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------- unbiasedness and coverage
# Contexts: two binary features -> 4 context types; K = 4 actions.
P_X1, P_X2 = 0.4, 0.7
CONTEXT_P = np.array([(1 - P_X1) * (1 - P_X2), (1 - P_X1) * P_X2, P_X1 * (1 - P_X2), P_X1 * P_X2])
REWARD_TABLE = np.array([   # E[r | context, action], rewards are Bernoulli
    [0.10, 0.30, 0.20, 0.05],
    [0.40, 0.15, 0.25, 0.30],
    [0.20, 0.20, 0.60, 0.10],
    [0.05, 0.50, 0.35, 0.45],
])
LOGGING = np.array([
    [0.40, 0.30, 0.20, 0.10],
    [0.10, 0.20, 0.30, 0.40],
    [0.25, 0.25, 0.25, 0.25],
    [0.10, 0.60, 0.15, 0.15],
])
TARGETS = {
    "deterministic": np.eye(4)[[1, 0, 2, 1]],   # the best action per context
    "stochastic": np.array([
        [0.10, 0.60, 0.20, 0.10],
        [0.70, 0.10, 0.10, 0.10],
        [0.05, 0.05, 0.80, 0.10],
        [0.00, 0.50, 0.20, 0.30],
    ]),
}
MODEL = REWARD_TABLE + np.array([0.15, -0.05, 0.12, -0.10])   # a deliberately biased reward model


def true_value(target):
    return float(sum(CONTEXT_P[c] * sum(target[c, a] * REWARD_TABLE[c, a] for a in range(4)) for c in range(4)))


def synthetic_log(seed, target, n=2000):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.random(n) < P_X1, rng.random(n) < P_X2
    context = 2 * x1 + x2
    cdf = LOGGING[context].cumsum(axis=1)
    actions = np.minimum((rng.random(n)[:, None] > cdf).sum(axis=1), 3)
    rewards = (rng.random(n) < REWARD_TABLE[context, actions]).astype(float)
    return rewards, LOGGING[context, actions], actions, target[context], MODEL[context]


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_ips_and_dr_cover_the_true_value(kind):
    target = TARGETS[kind]
    truth = true_value(target)
    assert truth == pytest.approx(
        sum(CONTEXT_P[c] * REWARD_TABLE[c] @ target[c] for c in range(4)), **EXACT
    )
    values = {"ips": [], "dr": []}
    covered = {"ips": 0, "dr": 0}
    seeds = 100
    for seed in range(seeds):
        rewards, logged_p, actions, pmf, model = synthetic_log(seed, target)
        results = {
            "ips": ips(rewards, logged_p, pmf[np.arange(rewards.size), actions]),
            "dr": dr(rewards, logged_p, actions, pmf, model),
        }
        for name, result in results.items():
            values[name].append(result.value)
            covered[name] += result.lower <= truth <= result.upper
    for name in ("ips", "dr"):
        assert covered[name] >= 0.9 * seeds, (name, covered[name])
        spread = np.std(values[name], ddof=1) / math.sqrt(seeds)
        assert abs(np.mean(values[name]) - truth) < 4 * spread, (name, np.mean(values[name]), truth)
    # the biased model alone misses: DM's mean is off by far more than its spread
    rewards, logged_p, actions, pmf, model = synthetic_log(0, target)
    assert abs(dm(pmf, model).value - truth) > 0.02


# ---------------------------------------------------------------- invalid input


def _args(**changes):
    base = {"rewards": REWARDS, "logged_p": LOGGED_P, "actions": ACTIONS, "target_pmf": TARGET_PMF, "reward_hat": REWARD_HAT}
    base.update(changes)
    return base


def _call_all(args, **options):
    """Every estimator that takes these arguments, so each one validates them."""
    target_p = args.get("target_p", TARGET_P)
    yield lambda: ips(args["rewards"], args["logged_p"], target_p, **options)
    yield lambda: snips(args["rewards"], args["logged_p"], target_p, **options)
    for fn in (dr, estimate_all):
        yield lambda fn=fn: fn(args["rewards"], args["logged_p"], args["actions"], args["target_pmf"], args["reward_hat"], **options)
    yield lambda: switch_dr(args["rewards"], args["logged_p"], args["actions"], args["target_pmf"], args["reward_hat"], tau=3, **options)


BAD_INPUTS = {
    "short rewards": (_args(rewards=REWARDS[:4]), "rewards|target_pmf|logged_p"),
    "empty": (_args(rewards=[], logged_p=[], actions=[], target_pmf=np.zeros((0, 3)), reward_hat=np.zeros((0, 3)), target_p=[]), "rewards"),
    "NaN reward": (_args(rewards=[1.0, math.nan, 1.0, 0.5, 0.0]), "rewards"),
    "short logged_p": (_args(logged_p=LOGGED_P[:4]), "logged_p"),
    "zero logged_p": (_args(logged_p=[0.5, 0.0, 0.2, 0.5, 0.4]), "logged_p"),
    "negative logged_p": (_args(logged_p=[0.5, -0.25, 0.2, 0.5, 0.4]), "logged_p"),
    "logged_p above 1": (_args(logged_p=[0.5, 1.25, 0.2, 0.5, 0.4]), "logged_p"),
    "NaN logged_p": (_args(logged_p=[0.5, math.nan, 0.2, 0.5, 0.4]), "logged_p"),
    "2-D rewards": (_args(rewards=[REWARDS]), "rewards"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_invalid_logged_inputs_raise(case):
    args, name = BAD_INPUTS[case]
    for call in _call_all(args):
        with pytest.raises(ValueError, match=name):
            call()


@pytest.mark.parametrize("target_p", [[0.7, 0.6, 1.2, 0.2, 0.0], [0.7, -0.1, 1.0, 0.2, 0.0], [0.7, math.nan, 1.0, 0.2, 0.0], [0.7, 0.6]])
def test_invalid_target_p_raises(target_p):
    for fn in (ips, snips):
        with pytest.raises(ValueError, match="target_p"):
            fn(REWARDS, LOGGED_P, target_p)


BAD_MODEL_INPUTS = {
    "row sums to 0.9": (_args(target_pmf=[[0.6, 0.2, 0.1]] + TARGET_PMF[1:]), "target_pmf"),
    "row off by 1e-5": (_args(target_pmf=[[0.7, 0.2, 0.10001]] + TARGET_PMF[1:]), "target_pmf"),
    "negative entry": (_args(target_pmf=[[1.2, -0.2, 0.0]] + TARGET_PMF[1:]), "target_pmf"),
    "NaN entry": (_args(target_pmf=[[math.nan, 0.5, 0.5]] + TARGET_PMF[1:]), "target_pmf"),
    "pmf too few rows": (_args(target_pmf=TARGET_PMF[:4]), "target_pmf"),
    "pmf 1-D": (_args(target_pmf=[1.0, 1.0, 1.0, 1.0, 1.0]), "target_pmf"),
    "model shape": (_args(reward_hat=[row[:2] for row in REWARD_HAT]), "reward_hat"),
    "model NaN where used": (_args(reward_hat=[[math.nan, 0.3, 0.5]] + REWARD_HAT[1:]), "reward_hat"),
    "action too large": (_args(actions=[0, 1, 3, 0, 2]), "actions"),
    "negative action": (_args(actions=[0, -1, 2, 0, 2]), "actions"),
    "fractional action": (_args(actions=[0, 1.5, 2, 0, 2]), "actions"),
    "short actions": (_args(actions=[0, 1, 2, 0]), "actions"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODEL_INPUTS))
def test_invalid_model_inputs_raise(case):
    args, name = BAD_MODEL_INPUTS[case]
    calls = list(_call_all(args))[2:]   # the estimators that read actions/target_pmf/reward_hat
    if name != "actions":
        calls.append(lambda: dm(args["target_pmf"], args["reward_hat"]))
    for call in calls:
        with pytest.raises(ValueError, match=name):
            call()


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, math.nan, "0.05", True])
def test_invalid_alpha_raises(alpha):
    for call in _call_all(_args(), alpha=alpha):
        with pytest.raises(ValueError, match="alpha"):
            call()
    for call in (lambda: dm(TARGET_PMF, REWARD_HAT, alpha=alpha), lambda: difference_of_means([1, 2], [3, 4], alpha),
                 lambda: normal_ci([1.0, 2.0], alpha), lambda: bootstrap_ci([1.0, 2.0], alpha)):
        with pytest.raises(ValueError, match="alpha"):
            call()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: ips(REWARDS, LOGGED_P, TARGET_P, ci="wald"), "ci"),
        (lambda: dm(TARGET_PMF, REWARD_HAT, ci="t"), "ci"),
        (lambda: ips(REWARDS, LOGGED_P, TARGET_P, clip=0), "clip"),
        (lambda: ips(REWARDS, LOGGED_P, TARGET_P, clip=-1), "clip"),
        (lambda: dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, clip=math.nan), "clip"),
        (lambda: switch_dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, tau=-1), "tau"),
        (lambda: switch_dr(REWARDS, LOGGED_P, ACTIONS, TARGET_PMF, REWARD_HAT, tau=None), "tau"),
        (lambda: ips(REWARDS, LOGGED_P, TARGET_P, bounds=(0, 0.5)), "bounds"),
        (lambda: ips(REWARDS, LOGGED_P, TARGET_P, bounds=(1, 0)), "bounds"),
        (lambda: ips(REWARDS, LOGGED_P, TARGET_P, bounds=(0,)), "bounds"),
        (lambda: ips(REWARDS, LOGGED_P, TARGET_P, ci="bootstrap", n_boot=0), "n_boot"),
        (lambda: difference_of_means([], [1.0]), "a"),
        (lambda: difference_of_means([1.0], [math.nan]), "b"),
        (lambda: bootstrap_ci([1.0, 2.0], denominator=[1.0]), "denominator"),
    ],
)
def test_invalid_options_raise(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_estimate_is_a_frozen_dataclass():
    assert Estimate.__dataclass_params__.frozen  # type: ignore[attr-defined]
