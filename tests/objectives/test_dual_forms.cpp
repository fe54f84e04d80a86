// The conjugate form's dual step, written by hand (nn::FlatMlpTape) and split in two halves
// of the batch, against the same loss differentiated by autograd.
#include <gtest/gtest.h>

#include "tom/core/threads.hpp"
#include "tom/core/worker_thread.hpp"
#include "tom/objectives/dual_forms.hpp"

namespace tom::objectives {
namespace {

constexpr std::int64_t kState = 3, kAction = 2, kNext = 2;

// A step's sample with terminal transitions and uneven next-action probabilities.
StepSample make_sample(torch::Generator& gen, std::int64_t kBatch) {
  StepSample sample;
  sample.batch = {torch::randn({kBatch, kState}, gen), torch::rand({kBatch, kAction}, gen) * 2 - 1,
                  torch::randn({kBatch}, gen), torch::randn({kBatch, kState}, gen),
                  (torch::rand({kBatch}, gen) < 0.3).to(torch::kFloat32)};
  sample.starts_and_nexts = torch::cat({torch::randn({kBatch, kState}, gen), sample.batch.s_next});
  sample.next.actions = torch::rand({kNext, 2 * kBatch, kAction}, gen) * 2 - 1;
  const torch::Tensor p = torch::rand({2 * kBatch}, gen) * 0.8 + 0.1;
  sample.next_probs = torch::stack({p, 1 - p});
  return sample;
}

// The conjugate loss, (1-gamma) E[Q(s0, a0)] + conjugate_term(r + gamma (1-d) E[Q(s', a')] - Q(s, a)),
// through autograd on a copy of `q`; returns the loss, the copy's gradients are in `copy`.
double autograd_loss(const DualNetImpl& q, DualNet& copy, const Divergence& divergence, double gamma,
                     const StepSample& sample) {
  const std::int64_t kBatch = sample.batch.s.size(0);
  {
    torch::NoGradGuard no_grad;
    const auto src = q.parameters(), dst = copy->parameters();
    for (std::size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  const auto value = [&](const torch::Tensor& states, std::int64_t first) {
    torch::Tensor v = torch::zeros({kBatch});
    for (std::int64_t k = 0; k < kNext; ++k) {
      const torch::Tensor a = sample.next.actions[k].narrow(0, first, kBatch);
      v = v + sample.next_probs[k].narrow(0, first, kBatch) * copy->forward(torch::cat({states, a}, 1));
    }
    return v;
  };
  const ReplayBatch& b = sample.batch;
  const torch::Tensor e = b.r + gamma * (1 - b.done) * value(b.s_next, kBatch) - copy->forward(torch::cat({b.s, b.a}, 1));
  const torch::Tensor loss =
      (1 - gamma) * value(sample.starts_and_nexts.narrow(0, 0, kBatch), 0).mean() + divergence.conjugate_term(e);
  copy->zero_grad();
  loss.backward();
  return loss.item<double>();
}

// Odd batches split unevenly; a batch of one leaves the second half empty. On 2 threads the
// halves and the alongside work run on both.
TEST(DualForms, ConjugateStepByHandMatchesAutograd) {
  struct Case {
    const char* divergence;
    int threads;
    std::int64_t batch;
  };
  for (const Case& c : {Case{"chi2", 1, 15}, Case{"chi2", 2, 15}, Case{"kl", 2, 15}, Case{"kl", 1, 16},
                        Case{"chi2", 2, 1}}) {
    SCOPED_TRACE(testing::Message() << c.divergence << ", " << c.threads << " threads, batch " << c.batch);
    tom::set_threads(c.threads);
    TomDualSettings settings;
    settings.divergence = c.divergence;
    settings.hidden = 24;
    settings.batch = static_cast<int>(c.batch);
    settings.next_actions = kNext;
    torch::manual_seed(5);
    auto form = make_dual_form(settings, kState + kAction, torch::kCPU);
    DualNet copy(kState + kAction, settings.hidden, settings.layers);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    std::unique_ptr<WorkerThread> worker;
    PairedWork pair(worker, true);
    // Two steps: the second runs on Adam-updated parameters and reused tape buffers.
    for (int step = 0; step < 2; ++step) {
      const StepSample sample = make_sample(gen, c.batch);
      const double expected = autograd_loss(*form->q().online, copy, form->divergence(), settings.gamma, sample);
      int alongside_runs = 0;
      const double loss = form->step(sample, pair, [&] { ++alongside_runs; }).item<double>();
      EXPECT_EQ(alongside_runs, 1);
      EXPECT_NEAR(loss, expected, 1e-5 * (1 + std::abs(expected)));
      const auto by_hand = form->q().online->parameters(), reference = copy->parameters();
      ASSERT_EQ(by_hand.size(), reference.size());
      for (std::size_t i = 0; i < by_hand.size(); ++i) {
        const torch::Tensor g = by_hand[i].grad(), want = reference[i].grad();
        ASSERT_TRUE(g.defined());
        EXPECT_TRUE(torch::allclose(g, want, 1e-4, 1e-6))
            << "parameter " << i << ": max difference " << (g - want).abs().max().item<double>();
      }
    }
  }
  tom::set_threads(1);
}

// The hand step reads dLoss/de off linear_weights(e) / B, for every divergence.
TEST(DualForms, ConjugateTermGradientIsLinearWeightsOverBatch) {
  for (const char* name : {"chi2", "kl"}) {
    const auto divergence = make_divergence(name);
    auto e = torch::tensor({-3.0, -0.5, 0.3, 1.7}).requires_grad_(true);
    divergence->conjugate_term(e).backward();
    EXPECT_TRUE(torch::allclose(e.grad(), divergence->linear_weights(e.detach()) / 4.0)) << name;
  }
}

}  // namespace
}  // namespace tom::objectives
