#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <numbers>
#include <thread>
#include <sstream>

#include "tom/agents/sac.hpp"
#include "tom/agents/squashed_gaussian.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/core/worker_thread.hpp"
#include "tom/nn/matmul.hpp"

namespace {

using tom::agents::Sac;
using tom::agents::SacSettings;

SacSettings small_settings() {
  SacSettings s;
  s.hidden_size = 32;
  return s;
}

tom::data::Batch random_batch(std::int64_t n, int obs_dim, const std::vector<double>& low,
                              const std::vector<double>& high, torch::Generator& gen) {
  const auto lo = torch::tensor(low, torch::kFloat32), hi = torch::tensor(high, torch::kFloat32);
  const auto action = lo + (hi - lo) * torch::rand({n, static_cast<std::int64_t>(low.size())}, gen);
  return {torch::randn({n, obs_dim}, gen), action, torch::randn({n}, gen), torch::randn({n, obs_dim}, gen),
          (torch::rand({n}, gen) < 0.2).to(torch::kFloat32)};
}

std::string saved(const Sac& sac) {
  torch::serialize::OutputArchive archive;
  sac.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void restore(Sac& sac, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  sac.load(archive);
}

const std::vector<double> kLow{-2.0, 0.0}, kHigh{2.0, 1.0};

TEST(Sac, ActionsStayWithinBounds) {
  tom::set_threads(1);
  Sac sac(small_settings(), 4, 2, kLow, kHigh, torch::kCPU, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto obs = 3.0 * torch::randn({500, 4}, gen);
  for (bool deterministic : {false, true}) {
    const auto actions = sac.act(obs, deterministic);
    ASSERT_EQ(actions.sizes(), (std::vector<std::int64_t>{500, 2}));
    for (int j = 0; j < 2; ++j) {
      EXPECT_GE(actions.select(1, j).min().item<double>(), kLow[j]);
      EXPECT_LE(actions.select(1, j).max().item<double>(), kHigh[j]);
    }
  }
  const auto stochastic = sac.act(obs, false);
  EXPECT_GT((stochastic - sac.act(obs, false)).abs().max().item<double>(), 0.0);
  // The single-observation path agrees with the batched one.
  const std::vector<double> single_obs{0.1, -0.2, 0.3, 0.4};
  const auto single = sac.act(single_obs, true);
  const auto batched = sac.act(torch::tensor(single_obs, torch::kFloat32).unsqueeze(0), true);
  for (int j = 0; j < 2; ++j) EXPECT_NEAR(single[j], batched[0][j].item<double>(), 1e-5);
  for (int i = 0; i < 100; ++i) {
    const auto a = sac.act(single_obs, false);
    for (int j = 0; j < 2; ++j) {
      EXPECT_GE(a[j], kLow[j]);
      EXPECT_LE(a[j], kHigh[j]);
    }
  }
}

// log pi(y) against the numerical derivative of the squashed distribution's CDF,
// P(tanh(u) <= y) = Phi((atanh(y) - mean) / std).
TEST(SquashedGaussian, LogProbMatchesNumericDensity) {
  const double mean = 0.3, log_std = -0.4, sd = std::exp(log_std);
  const auto head = torch::tensor({mean, log_std}, torch::kFloat64).repeat({7, 1});
  const auto noise = torch::linspace(-2.5, 2.5, 7, torch::kFloat64).unsqueeze(1);
  const auto s = tom::agents::squashed_gaussian(head, noise);
  const auto cdf = [&](double y) { return 0.5 * std::erfc(-(std::atanh(y) - mean) / (sd * std::sqrt(2.0))); };
  for (int i = 0; i < 7; ++i) {
    const double y = s.action[i][0].item<double>(), h = 1e-6;
    const double density = (cdf(y + h) - cdf(y - h)) / (2 * h);
    EXPECT_NEAR(s.log_prob[i].item<double>(), std::log(density), 1e-4) << "y = " << y;
  }
}

TEST(SquashedGaussian, BackwardMatchesAutograd) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto head = torch::randn({6, 4}, gen, torch::kFloat64);
  head[0][2] = -25.0;  // raw log-std below the clamp: no gradient
  head[1][3] = 3.0;    // above it
  head.requires_grad_(true);
  const auto noise = torch::randn({6, 2}, gen, torch::kFloat64);
  const auto grad_action = torch::randn({6, 2}, gen, torch::kFloat64);
  const double weight = 0.7;
  const auto s = tom::agents::squashed_gaussian(head, noise);
  ((grad_action * s.action).sum() + weight * s.log_prob.sum()).backward();
  auto grad_head = torch::empty({6, 4}, torch::kFloat64);
  torch::NoGradGuard no_grad;
  tom::agents::squashed_gaussian_backward(tom::agents::squashed_gaussian(head.detach(), noise), grad_action, weight,
                                          grad_head);
  EXPECT_TRUE(torch::allclose(grad_head, head.grad(), 1e-9, 1e-12));
  EXPECT_EQ(grad_head[0][2].item<double>(), 0.0);
  EXPECT_EQ(grad_head[1][3].item<double>(), 0.0);
}

torch::Tensor mlp_forward(const tom::nn::FlatMlp& net, const torch::Tensor& params, const torch::Tensor& x) {
  return tom::nn::mlp_forward(net.layer_views(params), x);
}

// Expects params_after == params_before - lr * g / (|g| + eps), Adam's first step, on every
// entry whose reference gradient is not negligible (there the step is the gradient's sign).
void expect_first_adam_step(const torch::Tensor& before, const torch::Tensor& after, const torch::Tensor& grad,
                            double lr, const char* what) {
  const auto expected = before - lr * grad / (grad.abs() + 1e-8);
  const auto significant = grad.abs() > 1e-3 * grad.abs().max();
  const auto mismatch = ((after - expected).abs() > 0.05 * lr).logical_and(significant);
  EXPECT_EQ(mismatch.sum().item<std::int64_t>(), 0) << what;
  EXPECT_GT(significant.sum().item<std::int64_t>(), grad.numel() / 2) << what;
}

// The hand-written update against the same SAC step computed with autograd.
TEST(Sac, UpdateMatchesAutogradReference) {
  tom::set_threads(1);
  const auto settings = small_settings();
  Sac sac(settings, 4, 2, kLow, kHigh, torch::kCPU, 4);
  auto data_gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto batch = random_batch(64, 4, kLow, kHigh, data_gen);
  auto noise_gen = sac.generator().clone();
  const auto policy = sac.policy().parameters().clone(), critic1 = sac.critic(0).parameters().clone(),
             critic2 = sac.critic(1).parameters().clone();
  const auto target1 = sac.target_critic(0).parameters().clone(), target2 = sac.target_critic(1).parameters().clone();
  const double alpha = sac.alpha();
  const auto stats = sac.update(batch);

  const auto scale = torch::tensor({2.0f, 0.5f}), offset = torch::tensor({0.0f, 0.5f});
  const auto noise_next = torch::empty({64, 2}).normal_(0.0, 1.0, noise_gen);
  const auto noise_pi = torch::empty({64, 2}).normal_(0.0, 1.0, noise_gen);
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    const auto next = tom::agents::squashed_gaussian(mlp_forward(sac.policy(), policy, batch.next_obs), noise_next);
    const auto x = torch::cat({batch.next_obs, next.action}, 1);
    const auto q = torch::min(mlp_forward(sac.critic(0), target1, x), mlp_forward(sac.critic(1), target2, x));
    target = batch.reward + 0.99 * (1 - batch.terminated) * (q.squeeze(1) - alpha * next.log_prob);
  }
  const auto c1 = critic1.clone().requires_grad_(true), c2 = critic2.clone().requires_grad_(true);
  const auto x = torch::cat({batch.obs, (batch.action - offset) / scale}, 1);
  const auto q_loss = (mlp_forward(sac.critic(0), c1, x).squeeze(1) - target).square().mean() +
                      (mlp_forward(sac.critic(1), c2, x).squeeze(1) - target).square().mean();
  q_loss.backward();
  EXPECT_NEAR(stats.q_loss, q_loss.item<double>(), 1e-4 * std::abs(q_loss.item<double>()));
  expect_first_adam_step(critic1, sac.critic(0).parameters(), c1.grad(), settings.critic_lr, "critic 1");
  expect_first_adam_step(critic2, sac.critic(1).parameters(), c2.grad(), settings.critic_lr, "critic 2");

  // The policy step uses the updated critics.
  const auto p = policy.clone().requires_grad_(true);
  const auto pi = tom::agents::squashed_gaussian(mlp_forward(sac.policy(), p, batch.obs), noise_pi);
  const auto xp = torch::cat({batch.obs, pi.action}, 1);
  const auto min_q = torch::min(mlp_forward(sac.critic(0), sac.critic(0).parameters(), xp),
                                mlp_forward(sac.critic(1), sac.critic(1).parameters(), xp));
  const auto policy_loss = (alpha * pi.log_prob - min_q.squeeze(1)).mean();
  policy_loss.backward();
  EXPECT_NEAR(stats.policy_loss, policy_loss.item<double>(), 1e-4 * std::abs(policy_loss.item<double>()) + 1e-5);
  expect_first_adam_step(policy, sac.policy().parameters(), p.grad(), settings.actor_lr, "policy");
  EXPECT_NEAR(stats.entropy, -pi.log_prob.mean().item<double>(), 1e-4);

  // Polyak averaging of the targets towards the updated critics.
  const auto polyak = (1 - settings.tau) * target1 + settings.tau * sac.critic(0).parameters();
  EXPECT_TRUE(torch::allclose(sac.target_critic(0).parameters(), polyak, 1e-6, 1e-7));
}

TEST(Sac, AlphaMovesTowardsTargetEntropy) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  const auto batch = random_batch(32, 4, kLow, kHigh, gen);
  // A fresh policy is far more random than -|A|: alpha falls.
  Sac sac(small_settings(), 4, 2, kLow, kHigh);
  EXPECT_DOUBLE_EQ(sac.target_entropy(), -2.0);
  const auto first = sac.update(batch);
  EXPECT_DOUBLE_EQ(first.alpha, 1.0);
  EXPECT_LT(sac.alpha(), 1.0);
  // An unreachable entropy target makes alpha grow.
  auto settings = small_settings();
  settings.auto_target_entropy = false;
  settings.target_entropy = 10.0;
  Sac eager(settings, 4, 2, kLow, kHigh);
  eager.update(batch);
  EXPECT_GT(eager.alpha(), 1.0);
  settings.learn_alpha = false;
  settings.init_alpha = 0.2;
  Sac fixed(settings, 4, 2, kLow, kHigh);
  EXPECT_EQ(fixed.update(batch).alpha_loss, 0.0);
  EXPECT_NEAR(fixed.alpha(), 0.2, 1e-6);
}

TEST(Sac, UpdatesReduceCriticLossOnFixedBatch) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto batch = random_batch(64, 4, kLow, kHigh, gen);
  batch.terminated = torch::ones({64});  // the TD target is the reward: a fixed regression problem
  auto settings = small_settings();
  settings.critic_lr = 3e-3;
  Sac sac(settings, 4, 2, kLow, kHigh);
  const double first = sac.update(batch).q_loss;
  double last = first;
  for (int i = 0; i < 200; ++i) last = sac.update(batch).q_loss;
  EXPECT_LT(last, 0.3 * first);
}

// The TOM authors' SAC clamps each critic loss at 1000 (PyTorch clamp_max): a critic whose
// loss is above the clamp gets no gradient. From a fresh agent (zero Adam moments) such an
// update leaves the critics exactly as they were; without the clamp they move.
TEST(Sac, ClampedCriticLossPassesNoGradient) {
  tom::set_threads(1);
  for (const double clamp : {1e-9, 0.0}) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const auto batch = random_batch(64, 4, kLow, kHigh, gen);
    auto settings = small_settings();
    settings.critic_loss_clamp = clamp;
    Sac sac(settings, 4, 2, kLow, kHigh);
    const auto before = sac.q_values(batch.obs, batch.action);
    sac.update(batch);
    const auto after = sac.q_values(batch.obs, batch.action);
    const bool unchanged = torch::equal(before.q1, after.q1) && torch::equal(before.q2, after.q2);
    EXPECT_EQ(unchanged, clamp > 0) << "clamp " << clamp;
  }
}

TEST(Sac, SaveLoadContinuesIdentically) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  const auto batch = random_batch(32, 4, kLow, kHigh, gen);
  Sac sac(small_settings(), 4, 2, kLow, kHigh, torch::kCPU, 9);
  for (int i = 0; i < 3; ++i) sac.update(batch);
  Sac resumed(small_settings(), 4, 2, kLow, kHigh, torch::kCPU, 10);
  restore(resumed, saved(sac));
  for (int i = 0; i < 3; ++i) {
    const auto a = sac.update(batch), b = resumed.update(batch);
    EXPECT_EQ(a.q_loss, b.q_loss);
    EXPECT_EQ(a.policy_loss, b.policy_loss);
    EXPECT_EQ(a.alpha, b.alpha);
  }
  EXPECT_TRUE(torch::equal(sac.policy().parameters(), resumed.policy().parameters()));
  EXPECT_TRUE(torch::equal(sac.target_critic(1).parameters(), resumed.target_critic(1).parameters()));
  const std::vector<double> obs{0.1, 0.2, 0.3, 0.4};
  EXPECT_EQ(sac.act(obs, false), resumed.act(obs, false));
}

// With 2 threads the critics run on two threads; the results are bit-identical to 1
// thread (Hopper dimensions, so that LibTorch's ops are large enough to parallelise), in
// either matmul precision.
void expect_two_thread_updates_match_one_thread(tom::nn::Precision precision) {
  const tom::nn::MatmulPrecisionScope in_precision(precision);
  const std::vector<double> low(3, -1.0), high(3, 1.0);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(13);
  const auto batch = random_batch(256, 11, low, high, gen);
  const tom::data::Batch first_transition{batch.obs.narrow(0, 0, 1), batch.action.narrow(0, 0, 1),
                                          batch.reward.narrow(0, 0, 1), batch.next_obs.narrow(0, 0, 1),
                                          batch.terminated.narrow(0, 0, 1)};
  const auto run = [&](int threads) {
    tom::set_threads(threads);
    Sac sac(SacSettings{}, 11, 3, low, high, torch::kCPU, 14);
    std::vector<tom::agents::SacStats> stats;
    for (int i = 0; i < 4; ++i) stats.push_back(sac.update(batch));
    stats.push_back(sac.update(first_transition));  // a batch of 1 is not split
    EXPECT_EQ(at::get_num_threads(), threads);  // update() leaves the caller's count alone
    tom::set_threads(1);
    return std::pair{stats, saved(sac)};
  };
  const auto [serial_stats, serial] = run(1);
  const auto [parallel_stats, parallel] = run(2);
  for (std::size_t i = 0; i < serial_stats.size(); ++i) {
    EXPECT_EQ(serial_stats[i].q_loss, parallel_stats[i].q_loss) << i;
    EXPECT_EQ(serial_stats[i].policy_loss, parallel_stats[i].policy_loss) << i;
    EXPECT_EQ(serial_stats[i].alpha_loss, parallel_stats[i].alpha_loss) << i;
  }
  // Networks, targets, optimiser states, alpha and generator state.
  EXPECT_TRUE(serial == parallel);
}

TEST(Sac, TwoThreadUpdatesAreBitIdenticalToOneThread) {
  expect_two_thread_updates_match_one_thread(tom::nn::Precision::fp32);
}

TEST(Sac, TwoThreadUpdatesInBf16AreBitIdenticalToOneThread) {
  if (!tom::nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  expect_two_thread_updates_match_one_thread(tom::nn::Precision::bf16);
}

TEST(WorkerThread, RunsOnASingleThreadedWorkerAndPropagatesErrors) {
  tom::set_threads(2);
  tom::WorkerThread worker;
  std::thread::id worker_id;
  int worker_ops_threads = 0;
  bool worker_grad_mode = true;
  {
    torch::NoGradGuard no_grad;  // the worker runs with the caller's grad mode
    // The caller waits for the worker to start, so that it does not run the job itself.
    std::atomic<bool> started = false;
    worker.run([&] { while (!started) std::this_thread::yield(); }, [&] {
      started = true;
      worker_id = std::this_thread::get_id();
      worker_ops_threads = at::get_num_threads();
      worker_grad_mode = torch::GradMode::is_enabled();
    });
  }
  EXPECT_NE(worker_id, std::this_thread::get_id());
  EXPECT_EQ(worker_ops_threads, 1);
  EXPECT_FALSE(worker_grad_mode);
  EXPECT_EQ(at::get_num_threads(), 2);
  {
    tom::SingleThreadedOps single;
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  int caller_runs = 0;
  EXPECT_THROW(worker.run([&] { ++caller_runs; }, [] { tom::fail("worker {}", 1); }), tom::Error);
  EXPECT_THROW(worker.run([] { throw std::runtime_error("caller"); }, [] {}), std::runtime_error);
  EXPECT_THROW(worker.run([] { throw std::runtime_error("caller"); }, [] { tom::fail("worker"); }),
               std::runtime_error);
  EXPECT_EQ(caller_runs, 1);
  int first = 0, second = 0;
  worker.run([&] { first = 1; }, [&] { second = 2; });  // still usable after errors
  EXPECT_EQ(first + second, 3);
  // Many short pairs: the worker and the caller take the second job in turns.
  std::atomic<int> count = 0;
  for (int i = 0; i < 1000; ++i) worker.run([&] { ++count; }, [&] { ++count; });
  EXPECT_EQ(count, 2000);
  tom::set_threads(1);
}

TEST(Sac, LoadRejectsOtherShapes) {
  Sac sac(small_settings(), 4, 2, kLow, kHigh);
  const auto bytes = saved(sac);
  const auto expect_error = [&](Sac& other, const std::string& needle) {
    try {
      restore(other, bytes);
      ADD_FAILURE() << "expected tom::Error mentioning " << needle;
    } catch (const tom::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Sac other_obs(small_settings(), 5, 2, kLow, kHigh);
  expect_error(other_obs, "obs_dim");
  Sac other_action(small_settings(), 4, 1, {-1.0}, {1.0});
  expect_error(other_action, "action_dim");
  auto wide = small_settings();
  wide.hidden_size = 64;
  Sac other_width(wide, 4, 2, kLow, kHigh);
  expect_error(other_width, "hidden_size");
  Sac other_bounds(small_settings(), 4, 2, {-1.0, -1.0}, {1.0, 1.0});
  expect_error(other_bounds, "action_low");
}

TEST(Sac, RejectsBadInputs) {
  EXPECT_THROW(Sac(small_settings(), 4, 2, {-1.0}, {1.0, 1.0}), tom::Error);
  EXPECT_THROW(Sac(small_settings(), 4, 2, {1.0, -1.0}, {1.0, 1.0}), tom::Error);
  EXPECT_THROW(Sac(small_settings(), 0, 2, kLow, kHigh), tom::Error);
  Sac sac(small_settings(), 4, 2, kLow, kHigh);
  EXPECT_THROW(sac.act(torch::zeros({3, 5}), true), tom::Error);
  EXPECT_THROW(sac.act(std::vector<double>{1.0, 2.0}, true), tom::Error);
  EXPECT_THROW(sac.act(std::vector<double>{1.0, 2.0, NAN, 0.0}, true), tom::Error);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto batch = random_batch(8, 4, kLow, kHigh, gen);
  batch.reward = torch::zeros({7});
  EXPECT_THROW(sac.update(batch), tom::Error);
  EXPECT_THROW(sac.q_values(torch::zeros({3, 4}), torch::zeros({2, 2})), tom::Error);
}

TEST(Sac, ModelLearningViewsGiveInputGradients) {
  tom::set_threads(1);
  Sac sac(small_settings(), 4, 2, kLow, kHigh);
  const tom::agents::ActionSampler& sampler = sac;
  const tom::agents::ValueFunction& view = sac;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
  const auto next_obs = torch::randn({5, 4}, gen).requires_grad_(true);
  const auto sample = sampler.sample_actions(next_obs, gen);
  EXPECT_EQ(sample.action.sizes(), (std::vector<std::int64_t>{5, 2}));
  EXPECT_EQ(sample.log_prob.sizes(), (std::vector<std::int64_t>{5}));
  const auto q = view.q_values(next_obs, sample.action);
  const auto grad = torch::autograd::grad({q.min().sum()}, {next_obs})[0];
  EXPECT_EQ(grad.sizes(), next_obs.sizes());
  EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
  // Before any update the targets equal the critics.
  const auto target = view.target_q_values(next_obs, sample.action);
  EXPECT_TRUE(torch::allclose(target.q1, q.q1));
}

}  // namespace

namespace {

// Bounds +-b: with entropy_units = action, log pi is that of the action in the task's
// units, so the automatic target -|A| is -|A| nats of that action, which is
// -|A| - |A| log b nats of the unit action (humanoid, b = 0.4: -17 -> -1.42). A
// unit-measured agent given that converted target must then take exactly the same
// temperature step and report the entropy shifted by |A| log b, because both sample the
// same actions from the same networks. At b = 0.05 the shift (6 nats) is large enough
// that the unconverted target drives alpha the other way.
TEST(Sac, ActionUnitsTargetMeansEntropyOfTheActionInTaskUnits) {
  const int obs_dim = 3, action_dim = 2;
  const double b = 0.05;
  const std::vector<double> low(action_dim, -b), high(action_dim, b);
  SacSettings action_units = small_settings();
  action_units.entropy_units = "action";
  SacSettings converted = small_settings();
  converted.auto_target_entropy = false;
  converted.target_entropy = -action_dim - action_dim * std::log(b);
  Sac in_action(action_units, obs_dim, action_dim, low, high, torch::kCPU, 7);
  Sac in_unit(converted, obs_dim, action_dim, low, high, torch::kCPU, 7);
  Sac naive(small_settings(), obs_dim, action_dim, low, high, torch::kCPU, 7);
  EXPECT_DOUBLE_EQ(in_action.target_entropy(), -2.0);
  EXPECT_NEAR(in_action.log_prob_shift(), -action_dim * std::log(b), 1e-12);
  EXPECT_EQ(in_unit.log_prob_shift(), 0.0);
  torch::Generator gen = at::detail::createCPUGenerator(3);
  const auto batch = random_batch(64, obs_dim, low, high, gen);
  const auto sa = in_action.update(batch), su = in_unit.update(batch);
  naive.update(batch);
  EXPECT_NEAR(sa.entropy, su.entropy + action_dim * std::log(b), 1e-5);
  EXPECT_DOUBLE_EQ(in_action.alpha(), in_unit.alpha());  // the same drive: log pi + target agree
  // The unit action's entropy (about 2 nats) is below the converted target (-2 + 6 = 4 nats)...
  EXPECT_LT(su.entropy, converted.target_entropy);
  EXPECT_GT(in_action.alpha(), 1.0);  // ...so alpha grows,
  EXPECT_LT(naive.alpha(), 1.0);      // while against -2 nats of the unit action it shrinks.
}

TEST(Sac, EntropyUnitsOnUnitBoundsChangeNothing) {
  const std::vector<double> low(2, -1.0), high(2, 1.0);
  SacSettings action_units = small_settings();
  action_units.entropy_units = "action";
  Sac a(action_units, 3, 2, low, high, torch::kCPU, 5);
  Sac b(small_settings(), 3, 2, low, high, torch::kCPU, 5);
  torch::Generator gen = at::detail::createCPUGenerator(4);
  const auto batch = random_batch(32, 3, low, high, gen);
  a.update(batch);
  b.update(batch);
  EXPECT_EQ(saved(a), saved(b));
}

TEST(Sac, XavierInitialisationHasXavierMomentsAndZeroBiases) {
  SacSettings s = small_settings();
  s.hidden_size = 256;
  s.init = "xavier";
  Sac sac(s, 11, 3, std::vector<double>(3, -1.0), std::vector<double>(3, 1.0));
  const auto& layers = sac.critic(0).layers();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& w = layers.weights[l];
    const double bound = std::sqrt(6.0 / static_cast<double>(w.size(0) + w.size(1)));
    EXPECT_LE(w.abs().max().item<double>(), bound);
    EXPECT_EQ(layers.biases[l].abs().max().item<double>(), 0.0);
    if (w.numel() > 1000) {  // uniform(-b, b) has variance b^2 / 3
      EXPECT_NEAR(w.var().item<double>(), bound * bound / 3, 0.1 * bound * bound / 3);
      EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.05 * bound);
    }
  }
  s.init = "torch";
  Sac plain(s, 11, 3, std::vector<double>(3, -1.0), std::vector<double>(3, 1.0));
  const auto& b = plain.critic(0).layers().biases[1];
  EXPECT_GT(b.abs().max().item<double>(), 0.0);
  EXPECT_LE(b.abs().max().item<double>(), 1.0 / std::sqrt(256.0));
  s.init = "normal";
  EXPECT_THROW(Sac(s, 11, 3, std::vector<double>(3, -1.0), std::vector<double>(3, 1.0)), tom::Error);
}

}  // namespace
