"""TOM on a user's own transitions and policy (a Python callable or a torch module), and
the finite-MDP check of its ratio estimator, from Python."""
import numpy as np
import pytest

import tomrl

TOM = {"tom.recent_pool": 60, "tom_dual.steps": 300, "tom_dual.batch": 64, "tom_dual.hidden": 32,
       "discriminator.passes": 20, "discriminator.batch": 32, "ensemble.members": 3, "ensemble.elites": 2,
       "ensemble.hidden_units": 32, "ensemble.max_epochs": 30}


def policy(states):
    """A user's policy: a = clip(-s_0 + 0.1 noise, -1, 1), batched."""
    rng = np.random.default_rng(len(states))
    return np.clip(-states[:, :1] + 0.1 * rng.normal(size=(len(states), 1)), -1, 1)


def transitions(seed=5):
    """s' = 0.9 s + 0.2 a, reward -|s|^2: three episodes of 60 steps with uniform random
    actions, then one with the policy (the newest rows)."""
    rng = np.random.default_rng(seed)
    rows = {"obs": [], "action": [], "reward": [], "next_obs": [], "terminated": []}
    for episode in range(4):
        s = rng.normal(size=3)
        for t in range(60):
            a = rng.uniform(-1, 1, 1) if episode < 3 else policy(s[None])[0]
            nxt = 0.9 * s + 0.2 * a
            for key, value in zip(rows, (s, a, -s @ s, nxt, False)):
                rows[key].append(value)
            s = nxt
    return {key: np.array(value) for key, value in rows.items()}


def test_tom_weighs_the_policys_transitions_up_and_fits_a_model():
    data = transitions()
    episode_start = np.zeros(240, dtype=bool)
    episode_start[::60] = True
    result = tomrl.fit_model(data["obs"], data["action"], data["reward"], data["next_obs"], data["terminated"],
                             policy=policy, episode_start=episode_start, settings=TOM, seed=1)
    w = result.fit_weights
    assert w.shape == (240,) and abs(w.mean() - 1) < 1e-4 and w.std() > 0
    assert result.start_weights.shape == (240,)
    assert w[180:].mean() > 1.0 > w[:180].mean(), (w[180:].mean(), w[:180].mean())
    assert result.weight_age_bins.shape == (100,)
    assert np.isfinite(result.fit["model_holdout_nll"]) and result.fit["weight_ess"] > 0
    assert "tom_dual_loss" in result.diagnostics
    # The fit weighed the policy's episode most: there the model knows the dynamics best.
    prediction = result.model.predict(data["obs"][180:], data["action"][180:])
    assert np.abs(prediction["next_obs_mean"] - data["next_obs"][180:]).mean() < 0.1


def test_a_torch_module_is_a_policy():
    torch = pytest.importorskip("torch")

    class Module(torch.nn.Module):
        def forward(self, states):
            return torch.clamp(-states[:, :1], -1, 1)

    data = transitions()
    result = tomrl.fit_model(data["obs"], data["action"], data["reward"], data["next_obs"], policy=Module(),
                             settings={**TOM, "tom_dual.steps": 30, "ensemble.max_epochs": 2})
    assert result.fit_weights.std() > 0


def test_mle_needs_no_policy_and_tom_says_it_needs_one():
    data = transitions()
    mle = tomrl.fit_model(data["obs"], data["action"], data["reward"], data["next_obs"], objective="mle",
                          settings={"ensemble.max_epochs": 2})
    np.testing.assert_array_equal(mle.fit_weights, np.ones(240))
    with pytest.raises(tomrl.Error, match="'tom' needs a policy"):
        tomrl.fit_model(data["obs"], data["action"], data["reward"], data["next_obs"], settings=TOM)


def test_bad_data_and_policies_are_named():
    data = transitions()
    args = [data["obs"], data["action"], data["reward"], data["next_obs"]]
    with pytest.raises(ValueError, match="one row per transition"):
        tomrl.fit_model(data["obs"], data["action"][:10], data["reward"], data["next_obs"], objective="mle")
    bad = data["next_obs"].copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="next_obs holds a non-finite value .* row 7"):
        tomrl.fit_model(data["obs"], data["action"], data["reward"], bad, objective="mle")
    with pytest.raises(ValueError, match="policy returned"):
        tomrl.fit_model(*args, policy=lambda s: np.zeros((3, 1)), settings=TOM)
    with pytest.raises(ValueError, match="the policy raised .*broken"):
        tomrl.fit_model(*args, policy=lambda s: 1 / 0 if False else (_ for _ in ()).throw(RuntimeError("broken")),
                        settings=TOM)
    with pytest.raises(KeyError, match="unknown setting"):
        tomrl.fit_model(*args, objective="mle", settings={"tom.no_such": 1})
    with pytest.raises(KeyError, match="no effect on a fit"):
        tomrl.fit_model(*args, objective="mle", settings={"sac.actor_lr": 1e-3})
    with pytest.raises(ValueError, match="objective.name"):
        tomrl.fit_model(*args, objective="magic")
    with pytest.raises(ValueError, match="terminated must have one entry"):
        tomrl.fit_model(*args, terminated=[False], objective="mle")


def test_verify_weights_matches_the_exact_ratio():
    # A short run of the check (the suite's C++ tests run it at full length).
    rows = tomrl.verify_weights(states=4, actions=2, seed=0, forms=["conjugate-exact"], steps=1500)
    assert [row["form"] for row in rows] == ["conjugate-exact"]
    assert rows[0]["mean_relative_error"] < 0.3 and 0 < rows[0]["steps"] <= 1500
    with pytest.raises(KeyError, match="unknown dual form"):
        tomrl.verify_weights(forms=["nope"])
    with pytest.raises(ValueError, match="states"):
        tomrl.verify_weights(states=0)
