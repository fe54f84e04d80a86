"""Runs from Python: train, resume and load, read as the command line writes them."""
import os
import subprocess

import numpy as np
import pytest

import tomrl
from conftest import SMALL_MBPO


def test_config_is_the_command_lines():
    config = tomrl.config("hopper", family="tom-paper", algo="mbpo", objective="tom", settings={"sac.actor_lr": 1e-3})
    assert config["run"]["algo"] == "mbpo" and config["objective"]["name"] == "tom"
    assert config["sac"]["actor_lr"] == pytest.approx(1e-3)
    tom = os.path.join(os.environ.get("TOM_BINARY_DIR", "build"), "tom")
    if os.path.exists(tom):
        printed = subprocess.run([tom, "config", "--env", "hopper", "--family", "tom-paper", "--algo", "mbpo",
                                  "--model-objective", "tom", "--set", "sac.actor_lr=1e-3"], capture_output=True,
                                 text=True, check=True).stdout
        import tomllib
        printed = tomllib.loads(printed.split("\n# sac:")[0])
        for binary in (printed, config):  # which build made the tom program and the module
            binary.pop("provenance")
        assert printed == config


def test_train_writes_a_run_that_loads(mbpo_tom_run):
    run = mbpo_tom_run
    assert run.config["run"]["algo"] == "mbpo" and run.config["objective"]["name"] == "tom"
    metrics = run.metrics
    steps = np.asarray(metrics["step"])
    np.testing.assert_array_equal(steps, [250, 500, 750, 1000])
    assert np.isfinite(np.asarray(metrics["eval_return_mean"])).all()
    weights = run.weights
    assert weights is not None and "bin_0" in list(weights.keys()) and len(np.asarray(weights["step"])) > 0


def test_policy_acts_on_one_observation_or_a_batch(mbpo_tom_run):
    policy = mbpo_tom_run.policy
    env = tomrl.make("inverted_pendulum")
    obs, _ = env.reset(seed=0)
    one = policy.act(obs)
    assert one.shape == (1,)
    batch = policy.act(np.stack([obs, obs * 0.5]))
    assert batch.shape == (2, 1)
    np.testing.assert_allclose(batch[0], one, rtol=1e-6)
    sampled = policy.act(np.stack([obs] * 64), deterministic=False)
    assert sampled.std() > 0 and np.all(np.abs(sampled) <= 3.0)
    with pytest.raises(ValueError, match="obs has shape"):
        policy.act(np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        policy.act(np.full(4, np.nan))


def test_model_predicts_rows_and_single_transitions(mbpo_tom_run):
    # What it predicts is checked against known dynamics in test_user_envs (the point task).
    model = mbpo_tom_run.model
    assert model.kind == "ensemble" and model.step == 1000
    rng = np.random.default_rng(0)
    rows, actions = rng.normal(0, 0.1, (50, 4)), rng.uniform(-1, 1, (50, 1))
    out = model.predict(rows, actions)
    assert out["next_obs_mean"].shape == (50, 4) and out["reward_mean"].shape == (50,)
    assert (out["next_obs_var"] > 0).all() and (out["reward_var"] > 0).all()
    single = model.predict(rows[0], actions[0])
    np.testing.assert_allclose(single["next_obs_mean"], out["next_obs_mean"][0], rtol=1e-6)
    assert single["reward_mean"] == pytest.approx(out["reward_mean"][0], rel=1e-6)
    with pytest.raises(ValueError, match="one action per observation"):
        model.predict(rows, actions[:3])
    with pytest.raises(ValueError, match="non-finite"):
        model.predict(np.full(4, np.inf), actions[0])


def test_torch_tensors_in_give_torch_tensors_out(mbpo_tom_run):
    torch = pytest.importorskip("torch")
    obs = torch.zeros(2, 4)
    actions = mbpo_tom_run.policy.act(obs)
    assert isinstance(actions, torch.Tensor) and actions.shape == (2, 1)
    out = mbpo_tom_run.model.predict(obs, actions)
    assert isinstance(out["next_obs_mean"], torch.Tensor)


def test_sac_run_has_no_model_and_training_lets_python_threads_run(tmp_path):
    import threading
    ticks, stop = [0], threading.Event()

    def count():  # runs only while train() has released the GIL
        while not stop.is_set():
            ticks[0] += 1
            stop.wait(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    run = tomrl.train(env="inverted_pendulum", algo="sac", steps=400, seed=1, threads=1, eval_every=200,
                      eval_episodes=1, checkpoint_every=200, out=str(tmp_path / "sac"),
                      settings={"sac.hidden_size": 16, "sac_loop.random_steps": 200, "sac_loop.update_after": 200})
    stop.set()
    counter.join()
    assert ticks[0] > 20, ticks[0]
    assert run.weights is None
    with pytest.raises(ValueError, match="no dynamics model"):
        run.model
    result = run.evaluate(episodes=2)
    assert result["length_mean"] >= 1


def test_resume_extends_a_run_to_what_an_uninterrupted_run_writes(tmp_path):
    common = dict(env="inverted_pendulum", algo="mbpo", objective="mle", family="mbpo-paper", seed=2, threads=1,
                  eval_every=250, eval_episodes=1, checkpoint_every=250, settings=SMALL_MBPO)
    whole = tomrl.train(steps=750, out=str(tmp_path / "whole"), **common)
    part = tomrl.train(steps=500, out=str(tmp_path / "part"), **common)
    resumed = tomrl.resume(part.dir, steps=750)
    a, b = whole.metrics, resumed.metrics
    for column in ["step", "eval_return_mean", "model_train_nll", "q_loss"]:
        np.testing.assert_array_equal(np.asarray(a[column]), np.asarray(b[column]))


def test_ctrl_c_stops_training_with_a_checkpoint(tmp_path):
    import signal
    import sys
    import time
    out = tmp_path / "interrupted"
    script = ("import tomrl\n"
              f"tomrl.train(env='inverted_pendulum', algo='sac', steps=200000, seed=0, threads=1, eval_every=100000, "
              f"checkpoint_every=100000, settings={{'sac.hidden_size': 16}}, out={str(out)!r})\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:  # step 0's checkpoint: the run is going
        time.sleep(0.2)
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr and "tomrl.resume" in stderr, stderr
    assert "stopped by signal 2" in stdout, stdout
    run = tomrl.load(out)
    assert run.config["run"]["steps"] == 200000


def test_a_corrupt_checkpoint_is_named(mbpo_tom_run, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(mbpo_tom_run.dir, copy, ignore=shutil.ignore_patterns("writer.lock"))
    data = (copy / "checkpoint.pt").read_bytes()
    (copy / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(tomrl.Error, match="checkpoint"):
        tomrl.load(copy).policy
    with pytest.raises(tomrl.Error, match="checkpoint"):
        tomrl.load(copy).model
