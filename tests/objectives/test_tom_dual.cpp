// TOM's dual program and discriminator: formulas, weight post-processing, bad inputs, and
// the discriminator's logit against a known log density ratio.
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/data/weights.hpp"
#include "tom/nn/matmul.hpp"
#include "tom/objectives/discriminator.hpp"
#include "tom/objectives/divergence.hpp"
#include "tom/objectives/tom_dual.hpp"
#include "../support.hpp"

namespace tom::objectives {
namespace {

// f*(x) of each element: the conjugate term of a batch of one residual.
torch::Tensor elementwise_conjugate(const Divergence& divergence, const torch::Tensor& x) {
  std::vector<torch::Tensor> terms;
  for (std::int64_t i = 0; i < x.size(0); ++i) terms.push_back(divergence.conjugate_term(x.narrow(0, i, 1)));
  return torch::stack(terms);
}

TEST(TomDual, Chi2ConjugateFormulas) {
  const auto chi2 = make_divergence("chi2");
  const auto x = torch::tensor({-3.0, -1.0, 0.0, 0.5, 2.0});
  EXPECT_TRUE(torch::allclose(elementwise_conjugate(*chi2, x), torch::tensor({1.5, -0.5, 0.0, 0.625, 4.0})));
  EXPECT_TRUE(torch::allclose(chi2->ratio(x), torch::tensor({0.0, 0.0, 1.0, 1.5, 3.0})));
  // f*' is the derivative of f* wherever the weight is positive (the term is a mean over 3).
  auto y = torch::tensor({-0.5, 0.3, 1.7}).requires_grad_(true);
  (3.0 * chi2->conjugate_term(y)).backward();
  EXPECT_TRUE(torch::allclose(y.grad(), chi2->ratio(y.detach())));
}

// log E[exp(e)]'s gradient is softmax(e), the kl ratio over the batch size.
TEST(TomDual, KlConjugateTermIsDifferentiatedByItsRatio) {
  const auto kl = make_divergence("kl");
  auto y = torch::tensor({-0.5, 0.3, 1.7, 0.0}).requires_grad_(true);
  (4.0 * kl->conjugate_term(y)).backward();
  EXPECT_TRUE(torch::allclose(y.grad(), kl->ratio(y.detach())));
  EXPECT_NEAR(kl->conjugate_term(torch::full({4}, 0.7)).item<double>(), 0.7, 1e-6);
}

// conjugate-u's weights: chi2's stay linear in e below -1 (unclipped); kl's are its ratio.
TEST(TomDual, LinearWeightsOfTheDivergences) {
  const auto e = torch::tensor({-3.0, -0.5, 0.0, 1.2});
  EXPECT_TRUE(torch::allclose(make_divergence("chi2")->linear_weights(e), torch::tensor({-2.0, 0.5, 1.0, 2.2})));
  const auto kl = make_divergence("kl");
  EXPECT_TRUE(torch::allclose(kl->linear_weights(e), kl->ratio(e)));
}

// The dual clips; the stage's data::Weights rescales to mean 1, once.
TEST(TomDual, Chi2WeightsClipAndTheStageNormalises) {
  const auto chi2 = make_divergence("chi2");
  const auto e = torch::tensor({-2.0, 0.0, 1.0, 30.0});
  const auto w = chi2->weights_from_residuals(e, 5.0);
  EXPECT_TRUE(torch::allclose(w, torch::tensor({0.0, 1.0, 2.0, 5.0})));
  const auto taken = data::Weights::checked(w, 4, "objective 'tom'").values();
  EXPECT_TRUE(torch::allclose(taken, torch::tensor({0.0f, 1.0f, 2.0f, 5.0f}) / 2.0f)) << taken;
}

TEST(TomDual, KlWeightsAreProportionalToExpResidualWithMeanOne) {
  const auto kl = make_divergence("kl");
  const auto e = torch::tensor({100.0, 101.0, 99.0, 100.5});  // exp overflows float without the shift
  const auto w = kl->weights_from_residuals(e, 1e6);
  EXPECT_NEAR(w.mean().item<double>(), 1.0, 1e-5);
  EXPECT_NEAR(w[1].item<double>() / w[0].item<double>(), std::exp(1.0), 1e-4);
  EXPECT_LE(kl->weights_from_residuals(e, 1.5).max().item<double>(), 1.5);
}

TEST(TomDual, WeightPostProcessingRejectsBadInput) {
  const auto chi2 = make_divergence("chi2");
  EXPECT_THROW(chi2->weights_from_residuals(torch::zeros({0}), 5.0), Error);
  EXPECT_THROW(chi2->weights_from_residuals(torch::zeros({2, 2}), 5.0), Error);
  const std::string unknown = test::error_of([] { make_divergence("tv"); });
  EXPECT_NE(unknown.find("'tv'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("chi2, kl"), std::string::npos) << unknown;
  const std::string all_zero = test::error_of(
      [&] { data::Weights::checked(chi2->weights_from_residuals(torch::full({3}, -4.0), 5.0), 3, "objective 'tom'"); });
  EXPECT_NE(all_zero.find("all-zero"), std::string::npos) << all_zero;
  EXPECT_THROW(chi2->weights_from_residuals(torch::zeros({3}), 0.0), Error);
}

TEST(TomDual, RejectsBadSettings) {
  TomDualSettings s;
  s.divergence = "hellinger";
  EXPECT_THROW(TomDual(s, 3, 2), Error);
  s = {};
  s.form = "minimax-ish";
  EXPECT_THROW(TomDual(s, 3, 2), Error);
  s = {};
  s.gamma = 1.0;
  EXPECT_THROW(TomDual(s, 3, 2), Error);
  s = {};
  s.lr = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(TomDual(s, 3, 2), Error);
  EXPECT_THROW(TomDual(TomDualSettings{}, 0, 2), Error);
}

// Gaussian replay data for a dual with state dim 3, action dim 2.
DualData gaussian_data(std::int64_t state_dim = 3, std::int64_t action_dim = 2) {
  DualData data;
  data.sample_initial_states = [=](std::int64_t n) { return torch::randn({n, state_dim}); };
  data.sample_replay = [=](std::int64_t n) {
    return ReplayBatch{torch::randn({n, state_dim}), torch::rand({n, action_dim}), torch::randn({n}),
                       torch::randn({n, state_dim}), torch::zeros({n})};
  };
  data.sample_next_actions = [=](const torch::Tensor& s, std::int64_t k) {
    return NextActions{torch::rand({k, s.size(0), action_dim}), {}};
  };
  return data;
}

// A small dual, quick to train in a test.
TomDualSettings small_dual(int hidden, int batch) {
  TomDualSettings s;
  s.hidden = hidden;
  s.batch = batch;
  return s;
}

// gaussian_data with every reward equal to `reward`.
DualData constant_reward_data(double reward) {
  DualData data = gaussian_data();
  data.sample_replay = [reward](std::int64_t n) {
    return ReplayBatch{torch::randn({n, 3}), torch::rand({n, 2}), torch::full({n}, reward), torch::randn({n, 3}),
                       torch::zeros({n})};
  };
  return data;
}

TEST(TomDual, TrainsAndWeighsABufferInEveryForm) {
  set_threads(1);
  for (const char* form : {"conjugate", "conjugate-u", "minimax"}) {
    for (const char* divergence : {"chi2", "kl"}) {
      TomDualSettings s = small_dual(32, 64);
      s.form = form;
      s.divergence = divergence;
      s.next_actions = 2;
      TomDual dual(s, 3, 2);
      EXPECT_TRUE(std::isfinite(dual.train(gaussian_data(), 20).loss));
      EXPECT_EQ(dual.steps_done(), 20);
      const std::int64_t n = 1000;
      const auto w = dual.weights(torch::randn({n, 3}), torch::rand({n, 2}), torch::randn({n}),
                                  torch::randn({n, 3}), torch::zeros({n}),
                                  {torch::rand({2, n, 2}), torch::full({2, n}, 0.5)});
      ASSERT_EQ(w.sizes(), torch::IntArrayRef({n}));
      EXPECT_GT(w.mean().item<double>(), 0.0) << form << " " << divergence;
      EXPECT_LE(w.max().item<double>(), s.clip_max) << form << " " << divergence;
      EXPECT_GE(w.min().item<double>(), 0.0);
      EXPECT_TRUE(torch::isfinite(w).all().item<bool>());
    }
  }
}

TEST(TomDual, TrainReportsItsConvergenceChecks) {
  set_threads(1);
  torch::manual_seed(3);
  TomDualSettings s = small_dual(32, 64);
  s.check_every = 10;
  s.probe_rows = 128;
  TomDual dual(s, 3, 2);
  const DualTrainReport first = dual.train(gaussian_data(), 45);
  EXPECT_EQ(first.steps, 45);
  EXPECT_EQ(dual.steps_done(), 45);
  EXPECT_TRUE(std::isfinite(first.loss) && std::isfinite(first.loss_trend));
  EXPECT_GT(first.weight_change, 0.0);
  EXPECT_GT(first.weight_mean, 0.25);
  EXPECT_LT(first.weight_mean, 4.0);
  // One interval only: no trend to report.
  EXPECT_EQ(dual.train(gaussian_data(), 5).loss_trend, 0.0);
}

TEST(TomDual, ConvergeScheduleStaysWithinItsBudget) {
  set_threads(1);
  torch::manual_seed(4);
  TomDualSettings s = small_dual(16, 32);
  s.schedule = "converge";
  s.check_every = 5;
  s.patience = 1;
  TomDual dual(s, 3, 2);
  const DualTrainReport report = dual.train(gaussian_data(), 60);
  EXPECT_GE(report.steps, 10);
  EXPECT_LE(report.steps, 60);
  EXPECT_EQ(dual.steps_done(), report.steps);
}

// With 2 threads each step's samples are drawn on a second thread while the step before
// descends; the dual, its report and the samplers' random stream are bit-identical to 1
// thread, in every form and under both schedules (converge stops early: no extra draw).
void expect_dual_training_independent_of_threads() {
  for (const char* form : {"conjugate", "conjugate-u", "minimax"}) {
    for (const char* schedule : {"fixed", "converge"}) {
      const auto train = [&](int threads) {
        set_threads(threads);
        torch::manual_seed(6);
        TomDualSettings s = small_dual(32, 64);
        s.form = form;
        s.schedule = schedule;
        s.check_every = 5;
        s.patience = 1;
        TomDual dual(s, 3, 2);
        const DualTrainReport report = dual.train(gaussian_data(), 60);
        const double after = torch::rand({}).item<double>();  // where the random stream stopped
        set_threads(1);
        torch::manual_seed(7);
        const std::int64_t n = 500;
        const auto w = dual.weights(torch::randn({n, 3}), torch::rand({n, 2}), torch::randn({n}),
                                    torch::randn({n, 3}), torch::zeros({n}), {torch::rand({1, n, 2}), {}});
        return std::tuple{report.steps, report.loss, report.weight_change, after, w};
      };
      const auto [steps1, loss1, change1, after1, w1] = train(1);
      const auto [steps2, loss2, change2, after2, w2] = train(2);
      EXPECT_EQ(steps1, steps2) << form << " " << schedule;
      EXPECT_EQ(loss1, loss2) << form << " " << schedule;
      EXPECT_EQ(change1, change2) << form << " " << schedule;
      EXPECT_EQ(after1, after2) << form << " " << schedule;
      EXPECT_TRUE(torch::equal(w1, w2)) << form << " " << schedule;
    }
  }
}

TEST(TomDual, TwoThreadTrainingIsBitIdenticalToOneThread) { expect_dual_training_independent_of_threads(); }

TEST(TomDual, TwoThreadTrainingInBf16IsBitIdenticalToOneThread) {
  if (!nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  const nn::MatmulPrecisionScope in_bf16(nn::Precision::bf16);
  expect_dual_training_independent_of_threads();
}

// A dual short of convergence is not a diverged one: a hopper run's first fit had raw
// weights of mean 0.23 after its 1000 steps, and an earlier guard stopped the run.
TEST(TomDual, ShortOfConvergenceIsNotDivergence) {
  set_threads(1);
  torch::manual_seed(6);
  const DualData low = constant_reward_data(-0.8);
  TomDualSettings s = small_dual(16, 32);
  s.check_every = 2;
  TomDual dual(s, 3, 2);
  const DualTrainReport report = dual.train(low, 4);
  EXPECT_LT(report.weight_mean, 0.25);
  EXPECT_GT(report.weight_mean, 0.0);
}

// The conjugate form's constant direction: rewards of mean -0.8 (TOM's log-ratio rewards
// are mostly negative) put the raw weights' mean near 0.2, and Q's constant must move by
// 0.8 / (1 - gamma) to bring it to 1; the layers carry part of it, the output bias the
// rest, and at the layers' rate the bias is the slow part. bias_rate = scaled halves the
// way to the mean of 1 in the same steps.
TEST(TomDual, ScaledBiasRateSettlesTheWeightsMean) {
  set_threads(1);
  const DualData negative = constant_reward_data(-0.8);
  const auto mean_after = [&](const char* rate) {
    torch::manual_seed(8);
    TomDualSettings s = small_dual(32, 64);
    s.check_every = 100;
    s.probe_rows = 256;
    s.bias_rate = rate;
    TomDual dual(s, 3, 2);
    return dual.train(negative, 1500).weight_mean;
  };
  const double shared = mean_after("shared"), scaled = mean_after("scaled");
  // Measured: 0.26 and 0.56 after 1500 steps (0.68 and 0.85 after 3000, both ~1 after 6000).
  EXPECT_LT(shared, 0.35);
  EXPECT_GT(scaled, 0.45);
}

TEST(TomDual, DivergenceIsAnErrorNotWeights) {
  set_threads(1);
  torch::manual_seed(5);
  const DualData huge = constant_reward_data(1e30);
  TomDualSettings s = small_dual(16, 32);
  TomDual conjugate(s, 3, 2);
  EXPECT_NE(test::error_of([&] { conjugate.train(huge, 5); }).find("diverged"), std::string::npos);
  // Descent-ascent at a huge rate runs away: the guard refuses its weights.
  s.form = "minimax";
  s.lr = 5.0;
  s.check_every = 20;
  TomDual minimax(s, 3, 2);
  EXPECT_NE(test::error_of([&] { minimax.train(gaussian_data(), 200); }).find("diverged"), std::string::npos);
}


// Reads network `key` of a saved dual into a fresh DualNet of the same shape.
DualNet saved_net(const TomDual& dual, const char* key, std::int64_t input, const TomDualSettings& s) {
  torch::serialize::OutputArchive out;
  dual.save(out);
  torch::serialize::InputArchive in = reread(out), part;
  in.read(key, part);
  DualNet net(input, s.hidden, s.layers);
  net->load(part);
  return net;
}

// conjugate-u's first two steps, against its definition computed here with autograd: U
// (its network u plus gamma (1-d) times Q's output bias c) regresses onto
// r + gamma (1-d) Q(s',a'); Q descends (1-gamma) Q(s0,a0) + stopgrad(e + 1) (gamma (1-d)
// Q(s',a') - Q(s,a)) with e = U - Q; both by Adam, Q's output bias at lr / (1-gamma). The
// large rate makes c far from 0 by the second step, where it enters U. The weights are
// max(e + 1, 0).
TEST(TomDual, ConjugateUStepsFollowTheirDefinition) {
  set_threads(1);
  torch::manual_seed(4);
  TomDualSettings s;
  s.form = "conjugate-u";
  s.hidden = 8;
  s.batch = 6;
  s.lr = 0.1;
  s.l2 = 0.0;
  s.ema = 0.0;  // the averaged copy is the online one after each step
  s.gamma = 0.9;
  const std::int64_t b = s.batch, sd = 3, ad = 2, input = sd + ad;
  const ReplayBatch batch{torch::randn({b, sd}), torch::rand({b, ad}), torch::randn({b}), torch::randn({b, sd}),
                          torch::tensor({0.f, 0.f, 1.f, 0.f, 0.f, 1.f})};
  const torch::Tensor s0 = torch::randn({b, sd}), next_actions = torch::rand({1, 2 * b, ad});
  DualData data;
  data.sample_initial_states = [&](std::int64_t) { return s0; };
  data.sample_replay = [&](std::int64_t) { return batch; };
  data.sample_next_actions = [&](const torch::Tensor&, std::int64_t) { return NextActions{next_actions, {}}; };
  const torch::Tensor sa = torch::cat({batch.s, batch.a}, 1), not_done = 1 - batch.done;
  const torch::Tensor start_rows = torch::cat({s0, next_actions[0].narrow(0, 0, b)}, 1);
  const torch::Tensor next_rows = torch::cat({batch.s_next, next_actions[0].narrow(0, b, b)}, 1);

  // Gradients of both losses at the nets' current values, by parameter name ("q.*", "u.*").
  const auto gradients = [&](DualNet& q, DualNet& u) {
    const torch::Tensor discounted_next = s.gamma * not_done * q->forward(next_rows);
    const torch::Tensor carried = s.gamma * not_done * q->output_bias();
    const torch::Tensor u_loss = (u->forward(sa) - (batch.r + discounted_next - carried).detach()).square().mean();
    const torch::Tensor e = (u->forward(sa) + carried - q->forward(sa)).detach();
    const torch::Tensor q_loss =
        (1 - s.gamma) * q->forward(start_rows).mean() + ((e + 1) * (discounted_next - q->forward(sa))).mean();
    u_loss.backward();
    q_loss.backward();
    std::map<std::string, torch::Tensor> g;
    for (const auto& p : q->named_parameters()) g["q." + p.key()] = p.value().grad().clone();
    for (const auto& p : u->named_parameters()) g["u." + p.key()] = p.value().grad().clone();
    return g;
  };
  // PyTorch's Adam after the gradients `history` (beta 0.9, 0.999, eps 1e-8).
  const auto adam_update = [](const std::vector<torch::Tensor>& history, double lr) {
    torch::Tensor m = torch::zeros_like(history[0]), v = torch::zeros_like(history[0]);
    for (const auto& g : history) {
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
    }
    const auto t = static_cast<double>(history.size());
    return -lr / (1 - std::pow(0.9, t)) * m / ((v / (1 - std::pow(0.999, t))).sqrt() + 1e-8);
  };

  TomDual dual(s, sd, ad);
  DualNet q = saved_net(dual, "q", input, s), u = saved_net(dual, "u_net", input, s);
  std::map<std::string, std::vector<torch::Tensor>> history;
  for (int step = 1; step <= 2; ++step) {
    for (auto& [name, g] : gradients(q, u)) history[name].push_back(g);
    dual.step(data);
    DualNet q_next = saved_net(dual, "q", input, s), u_next = saved_net(dual, "u_net", input, s);
    for (const auto& [net, before, after] : {std::tuple{"q", q, q_next}, std::tuple{"u", u, u_next}}) {
      const auto now = after->named_parameters();
      for (const auto& p : before->named_parameters()) {
        const std::string name = std::string(net) + "." + p.key();
        const double lr = name == "q.output_bias" ? s.lr / (1 - s.gamma) : s.lr;
        EXPECT_TRUE(torch::allclose(now[p.key()] - p.value().detach(), adam_update(history[name], lr), 1e-3, 1e-6))
            << "step " << step << ", " << name;
      }
    }
    q = q_next;
    u = u_next;
  }
  EXPECT_GT(std::abs(q->output_bias().item<double>()), 0.5);  // so the carried bias mattered

  torch::NoGradGuard no_grad;
  const torch::Tensor expected = torch::relu(u->forward(sa) + s.gamma * not_done * q->output_bias() - q->forward(sa) + 1);
  const torch::Tensor got = dual.weights(batch.s, batch.a, batch.r, batch.s_next, batch.done, {});
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6)) << got << expected;
}

TEST(TomDual, ChunkedWeightsMatchOneShotWeights) {
  for (const char* form : {"conjugate", "conjugate-u", "minimax"}) {
    TomDualSettings s;
    s.form = form;
    s.hidden = 16;
    TomDual dual(s, 3, 2);
    const std::int64_t n = 60000;  // spans two chunks
    const auto st = torch::randn({n, 3}), a = torch::rand({n, 2}), r = torch::randn({n});
    const auto next = torch::randn({n, 3}), done = (torch::rand({n}) < 0.1).to(torch::kFloat32);
    const NextActions acts{torch::rand({1, n, 2}), {}};
    const auto slice = [&](std::int64_t start) {
      return dual.weights(st.narrow(0, start, 10), a.narrow(0, start, 10), r.narrow(0, start, 10),
                          next.narrow(0, start, 10), done.narrow(0, start, 10),
                          {acts.actions.narrow(1, start, 10), {}});
    };
    const auto all = dual.weights(st, a, r, next, done, acts);
    EXPECT_TRUE(torch::allclose(all.narrow(0, 0, 10), slice(0), 1e-5, 1e-5)) << form;
    EXPECT_TRUE(torch::allclose(all.narrow(0, n - 10, 10), slice(n - 10), 1e-5, 1e-5)) << form;
  }
}

TEST(TomDual, MinimaxGeneratorsAreTheConjugatesOfFStar) {
  // f*(x) = sup_{w >= 0} [w x - f(w)], attained at w = f*'(x); checked on a grid of w.
  const auto w = torch::linspace(0.0, 20.0, 200001, torch::kFloat64);
  for (double x : {-2.0, -0.5, 0.0, 0.7, 2.0}) {
    const auto chi2 = (w * x - make_divergence("chi2")->generator(w)).max().item<double>();
    const auto expected_chi2 = x > -1.0 ? 0.5 * x * x + x : -0.5;  // w >= 0 binds below -1
    EXPECT_NEAR(chi2, expected_chi2, 1e-6) << x;
    const auto kl = (w * x - make_divergence("kl")->generator(w)).max().item<double>();
    EXPECT_NEAR(kl, std::exp(x) - 1.0, 1e-6) << x;
  }
  EXPECT_THROW(make_divergence("tv"), Error);
}

TEST(TomDual, SaveLoadContinuesExactlyInEveryForm) {
  set_threads(1);
  for (const char* form : {"conjugate", "conjugate-u", "minimax"}) {
    TomDualSettings s;
    s.form = form;
    s.hidden = 16;
    s.batch = 32;
    torch::manual_seed(3);
    TomDual trained(s, 3, 2);
    trained.train(gaussian_data(), 10);
    torch::serialize::OutputArchive out;
    trained.save(out);
    torch::serialize::InputArchive in = reread(out);
    TomDual restored(s, 3, 2);
    restored.load(in);
    EXPECT_EQ(restored.steps_done(), 10);
    for (TomDual* dual : {&trained, &restored}) {
      torch::manual_seed(4);
      dual->train(gaussian_data(), 5);
    }
    torch::manual_seed(5);
    const std::int64_t n = 100;
    const auto st = torch::randn({n, 3}), a = torch::rand({n, 2}), r = torch::randn({n});
    const auto next = torch::randn({n, 3});
    const NextActions acts{torch::rand({1, n, 2}), {}};
    EXPECT_TRUE(torch::equal(trained.weights(st, a, r, next, torch::zeros({n}), acts),
                             restored.weights(st, a, r, next, torch::zeros({n}), acts)))
        << form;
    TomDualSettings other = s;
    other.form = std::string(form) == "minimax" ? "conjugate-u" : "minimax";
    TomDual mismatched(other, 3, 2);
    torch::serialize::InputArchive again = reread(out);
    EXPECT_THROW(mismatched.load(again), Error) << form;
  }
}

// A conjugate-u checkpoint from before U carried Q's output bias stored its network as "u";
// its values mean something else now, so it is refused with a message saying so.
TEST(TomDual, RefusesTheOlderConjugateUCheckpoint) {
  TomDualSettings s;
  s.form = "conjugate-u";
  s.hidden = 8;
  TomDual dual(s, 3, 2);
  torch::serialize::OutputArchive out, old_u;
  dual.save(out);
  DualNet(5, s.hidden, s.layers)->save(old_u);
  out.write("u", old_u);
  torch::serialize::InputArchive in = reread(out);
  try {
    TomDual(s, 3, 2).load(in);
    ADD_FAILURE() << "an older conjugate-u checkpoint was loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("older version"), std::string::npos) << e.what();
  }
}

TEST(TomDual, RejectsBadShapesAndValues) {
  TomDualSettings s = small_dual(8, 4);
  TomDual dual(s, 3, 2);
  auto data = gaussian_data();
  data.sample_replay = [](std::int64_t n) {
    return ReplayBatch{torch::randn({n, 4}), torch::rand({n, 2}), torch::randn({n}),
                       torch::randn({n, 3}), torch::zeros({n})};
  };
  EXPECT_THROW(dual.train(data, 1), Error);
  data = gaussian_data();
  data.sample_next_actions = [](const torch::Tensor& st, std::int64_t k) {
    return NextActions{torch::rand({k, st.size(0), 5}), {}};
  };
  EXPECT_THROW(dual.train(data, 1), Error);
  data = gaussian_data();
  data.sample_initial_states = {};
  EXPECT_THROW(dual.train(data, 1), Error);
  EXPECT_THROW(dual.train(gaussian_data(), -1), Error);

  const std::int64_t n = 5;
  auto st = torch::randn({n, 3});
  st[2][1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(dual.weights(st, torch::rand({n, 2}), torch::zeros({n}), torch::randn({n, 3}),
                            torch::zeros({n}), {torch::rand({1, n, 2}), {}}),
               Error);
  EXPECT_THROW(dual.weights(torch::randn({n, 3}), torch::rand({n, 2}), torch::zeros({n}),
                            torch::randn({n, 3}), torch::zeros({n}),
                            {torch::rand({2, n, 2}), torch::full({3, n}, 0.5)}),
               Error);
  EXPECT_THROW(dual.weights(torch::randn({0, 3}), torch::rand({0, 2}), torch::zeros({0}),
                            torch::randn({0, 3}), torch::zeros({0}), {torch::rand({1, 0, 2}), {}}),
               Error);
}

// Recent transitions ~ N(shift * u, I), buffer ~ N(0, I) on the rows [s, a, s'] (2+1+2
// dims) with a unit vector u: log p_recent/p_buffer (x) = shift x.u - shift^2/2.
struct GaussianPair {
  Transitions recent, buffer;
  torch::Tensor direction;
};

Transitions split(const torch::Tensor& x) {
  return {x.narrow(1, 0, 2), x.narrow(1, 2, 1), x.narrow(1, 3, 2)};
}

GaussianPair gaussian_pair(double shift, std::int64_t n) {
  const auto u = torch::tensor({1.0f, -1.0f, 1.0f, 0.0f, 1.0f}) / 2.0f;
  return {split(torch::randn({n, 5}) + shift * u), split(torch::randn({n, 5})), u};
}

TEST(Discriminator, SeparatesTwoGaussians) {
  set_threads(1);
  torch::manual_seed(0);
  at::Generator gen = at::detail::createCPUGenerator(0);
  DiscriminatorSettings s;
  s.passes = 10;
  s.buffer_label = 0.0;
  Discriminator disc(s, 2, 1);
  // Bayes accuracy 0.9987; the gradient penalty keeps the logit's slope near 1, so this
  // checks the decision boundary rather than the logit's scale.
  const auto pair = gaussian_pair(6.0, 2048);
  disc.fit(pair.recent, pair.buffer, gen);
  const auto test = gaussian_pair(6.0, 2000);
  const double accuracy = 0.5 * (disc.log_ratio(test.recent).gt(0).to(torch::kFloat64).mean().item<double>() +
                                 disc.log_ratio(test.buffer).le(0).to(torch::kFloat64).mean().item<double>());
  EXPECT_GT(accuracy, 0.98);
}

// A parameter (layer, name) of the discriminator's network, read back through its
// checkpoint.
torch::Tensor discriminator_parameter(const Discriminator& disc, const std::string& layer, const std::string& name) {
  torch::serialize::OutputArchive out;
  disc.save(out);
  torch::serialize::InputArchive in = reread(out), net, part;
  in.read("net", net);
  net.read(layer, part);
  torch::Tensor value;
  part.read(name, value);
  return value;
}

// The TOM authors' discriminator optimises only its trunk: the s, a, s' branches keep
// their random initialisation (train_branches = false); by default every layer learns.
TEST(Discriminator, WithoutTrainBranchesOnlyTheTrunkLearns) {
  set_threads(1);
  for (const bool train_branches : {false, true}) {
    torch::manual_seed(2);
    at::Generator gen = at::detail::createCPUGenerator(2);
    DiscriminatorSettings s;
    s.passes = 2;
    s.recreate = false;  // keep the network across fits, so before and after compare
    s.train_branches = train_branches;
    Discriminator disc(s, 2, 1);
    const auto pair = gaussian_pair(2.0, 512);
    const auto branch_before = discriminator_parameter(disc, "state_in", "weight");
    const auto next_before = discriminator_parameter(disc, "next_in", "bias");
    const auto trunk_before = discriminator_parameter(disc, "joint", "weight");
    disc.fit(pair.recent, pair.buffer, gen);
    EXPECT_EQ(torch::equal(discriminator_parameter(disc, "state_in", "weight"), branch_before), !train_branches);
    EXPECT_EQ(torch::equal(discriminator_parameter(disc, "next_in", "bias"), next_before), !train_branches);
    EXPECT_FALSE(torch::equal(discriminator_parameter(disc, "joint", "weight"), trunk_before));
  }
}

TEST(Discriminator, LogitApproximatesTheLogDensityRatio) {
  set_threads(1);
  torch::manual_seed(1);
  at::Generator gen = at::detail::createCPUGenerator(1);
  DiscriminatorSettings s;
  s.passes = 25;
  s.buffer_label = 0.0;  // unsmoothed BCE: the optimal logit is the log ratio
  Discriminator disc(s, 2, 1);
  const auto pair = gaussian_pair(1.0, 4096);
  disc.fit(pair.recent, pair.buffer, gen);
  // Compare on the mixture, where both densities have mass.
  const auto mixture = torch::cat({torch::randn({2000, 5}) + pair.direction, torch::randn({2000, 5})});
  const auto truth = mixture.matmul(pair.direction) - 0.5;
  const auto logit = disc.log_ratio(split(mixture));
  const double mean_abs = (logit - truth).abs().mean().item<double>();
  EXPECT_LT(mean_abs, 0.15);
  EXPECT_GT(torch::corrcoef(torch::stack({logit, truth})).index({0, 1}).item<double>(), 0.95);
}

// With 2 threads each step's two halves run at once; the losses and the fitted network's
// logits are bit-identical to 1 thread (with and without the gradient penalty).
void expect_discriminator_fit_independent_of_threads() {
  for (const double penalty : {0.0, 10.0}) {
    const auto fit = [&](int threads) {
      set_threads(threads);
      torch::manual_seed(4);
      at::Generator gen = at::detail::createCPUGenerator(4);
      DiscriminatorSettings s;
      s.passes = 3;
      s.grad_penalty = penalty;
      Discriminator disc(s, 11, 3);
      const auto recent = Transitions{torch::randn({700, 11}), torch::rand({700, 3}), torch::randn({700, 11})};
      const auto buffer = Transitions{torch::randn({900, 11}), torch::rand({900, 3}), torch::randn({900, 11})};
      const double loss = disc.fit(recent, buffer, gen);
      set_threads(1);
      return std::pair{loss, disc.log_ratio(buffer)};
    };
    const auto [serial_loss, serial_logits] = fit(1);
    const auto [parallel_loss, parallel_logits] = fit(2);
    EXPECT_EQ(serial_loss, parallel_loss) << "grad_penalty " << penalty;
    EXPECT_TRUE(torch::equal(serial_logits, parallel_logits)) << "grad_penalty " << penalty;
  }
}

TEST(Discriminator, TwoThreadFitIsBitIdenticalToOneThread) { expect_discriminator_fit_independent_of_threads(); }

TEST(Discriminator, TwoThreadFitInBf16IsBitIdenticalToOneThread) {
  if (!nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  const nn::MatmulPrecisionScope in_bf16(nn::Precision::bf16);
  expect_discriminator_fit_independent_of_threads();
}

TEST(Discriminator, RecreatesOrContinuesBetweenFits) {
  at::Generator gen = at::detail::createCPUGenerator(2);
  DiscriminatorSettings s;
  s.passes = 1;
  s.hidden = 16;
  s.branch_hidden = 8;
  const auto pair = gaussian_pair(2.0, 64);
  for (bool recreate : {true, false}) {
    s.recreate = recreate;
    Discriminator disc(s, 2, 1);
    disc.fit(pair.recent, pair.buffer, gen);
    const auto before = disc.log_ratio(pair.recent);
    disc.fit(pair.recent, pair.buffer, gen);
    EXPECT_FALSE(torch::allclose(before, disc.log_ratio(pair.recent)));
  }
}

TEST(Discriminator, RejectsBadInput) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  DiscriminatorSettings s;
  s.buffer_label = 0.7;
  EXPECT_THROW(Discriminator(s, 2, 1), Error);
  s = {};
  s.passes = 0;
  EXPECT_THROW(Discriminator(s, 2, 1), Error);
  s = {};
  s.passes = 1;
  Discriminator disc(s, 2, 1);
  const auto good = split(torch::randn({8, 5}));
  EXPECT_THROW(disc.fit({torch::randn({8, 3}), good.a, good.s_next}, good, gen), Error);
  EXPECT_THROW(disc.fit(good, {good.s, torch::randn({7, 1}), good.s_next}, gen), Error);
  EXPECT_THROW(disc.fit(split(torch::randn({0, 5})), good, gen), Error);
  auto bad = torch::randn({8, 5});
  bad[0][4] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(disc.log_ratio(split(bad)), Error);
  EXPECT_THROW(disc.step(torch::randn({4, 5}), torch::randn({3, 5}), gen), Error);
}

}  // namespace
}  // namespace tom::objectives

namespace {

// tom_dual.init = xavier (the TOM authors' Q network): Xavier-uniform weights, zero biases;
// the free output bias starts at 0 in both forms.
TEST(TomDual, XavierInitialisationHasXavierMomentsAndZeroBiases) {
  tom::objectives::DualNet xavier(40, 256, 2, tom::nn::Init::xavier);
  const auto layers = xavier->layers();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& w = layers.weights[l];
    const double bound = std::sqrt(6.0 / static_cast<double>(w.size(0) + w.size(1)));
    EXPECT_LE(w.abs().max().item<double>(), bound);
    EXPECT_EQ(layers.biases[l].abs().max().item<double>(), 0.0);
    if (w.numel() > 1000) EXPECT_NEAR(w.var().item<double>(), bound * bound / 3, 0.1 * bound * bound / 3);
  }
  tom::objectives::DualNet plain(40, 256, 2);
  const auto hidden_bias = plain->layers().biases[0];
  EXPECT_GT(hidden_bias.abs().max().item<double>(), 0.0);
  EXPECT_LE(hidden_bias.abs().max().item<double>(), 1.0 / std::sqrt(40.0));
  EXPECT_EQ(plain->output_bias().item<double>(), 0.0);
}

}  // namespace
