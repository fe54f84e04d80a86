#include "tom/objectives/discriminator.hpp"

#include <algorithm>
#include <cmath>

#include "tom/core/error.hpp"
#include "tom/core/worker_thread.hpp"
#include "tom/nn/matmul.hpp"

namespace tom::objectives {
namespace {

constexpr std::int64_t kLogitChunk = 50000;

}  // namespace

void DiscriminatorSettings::check() {
  check_settings("discriminator", *this);
}

struct Discriminator::Net : torch::nn::Module {
  std::int64_t state_dim, action_dim, branch;
  torch::nn::Linear state_in{nullptr}, action_in{nullptr}, next_in{nullptr}, joint{nullptr},
      out{nullptr};

  Net(std::int64_t s, std::int64_t a, int branch_hidden, int hidden)
      : state_dim(s), action_dim(a), branch(branch_hidden) {
    state_in = register_module("state_in", torch::nn::Linear(s, branch_hidden));
    action_in = register_module("action_in", torch::nn::Linear(a, branch_hidden));
    next_in = register_module("next_in", torch::nn::Linear(s, branch_hidden));
    joint = register_module("joint", torch::nn::Linear(3 * branch_hidden, hidden));
    out = register_module("out", torch::nn::Linear(hidden, 1));
  }

  static torch::Tensor apply(torch::nn::Linear& layer, const torch::Tensor& x) {
    return nn::linear(x, layer->weight.t(), layer->bias);
  }

  // Logits of rows x = [s, a, s'] ([n]) and, for the last `grad_rows` rows, the norm of
  // d logit / d x, written out through the tanh layers (exactly what autograd would give).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, std::int64_t grad_rows) {
    const auto hs = torch::tanh(apply(state_in, x.narrow(1, 0, state_dim)));
    const auto ha = torch::tanh(apply(action_in, x.narrow(1, state_dim, action_dim)));
    const auto hn = torch::tanh(apply(next_in, x.narrow(1, state_dim + action_dim, state_dim)));
    const auto g = torch::tanh(apply(joint, torch::cat({hs, ha, hn}, 1)));
    const auto logits = apply(out, g).squeeze(1);
    if (grad_rows == 0) return {logits, {}};
    const auto first = x.size(0) - grad_rows;
    auto tail = [&](const torch::Tensor& t) { return t.narrow(0, first, grad_rows); };
    auto tanh_slope = [&](const torch::Tensor& h) { return 1.0 - tail(h).square(); };
    const auto d_hidden = nn::linear(tanh_slope(g) * out->weight, joint->weight);
    auto branch_grad = [&](int index, const torch::Tensor& h, torch::nn::Linear& layer) {
      return nn::linear(d_hidden.narrow(1, index * branch, branch) * tanh_slope(h), layer->weight);
    };
    const auto squared = branch_grad(0, hs, state_in).square().sum(1) +
                         branch_grad(1, ha, action_in).square().sum(1) +
                         branch_grad(2, hn, next_in).square().sum(1);
    return {logits, torch::sqrt(squared + 1e-12)};
  }
};

Discriminator::Discriminator(DiscriminatorSettings settings, std::int64_t state_dim,
                             std::int64_t action_dim, torch::Device device)
    : settings_(std::move(settings)),
      state_dim_(state_dim),
      action_dim_(action_dim),
      device_(device) {
  settings_.check();
  if (state_dim < 1 || action_dim < 1)
    fail("discriminator: state and action dimensions must be positive (got {}, {})", state_dim,
         action_dim);
  reset(nullptr);
}

void Discriminator::reset(at::Generator* gen) {
  net_ = std::make_shared<Net>(state_dim_, action_dim_, settings_.branch_hidden, settings_.hidden);
  if (gen) {
    // LibTorch's initialisation (uniform within 1/sqrt(fan_in)) redrawn from `gen`, so a
    // re-created network is reproducible from the caller's (checkpointed) generator.
    torch::NoGradGuard no_grad;
    for (auto* layer : {&net_->state_in, &net_->action_in, &net_->next_in, &net_->joint, &net_->out}) {
      const double bound = 1.0 / std::sqrt(static_cast<double>((*layer)->weight.size(1)));
      (*layer)->weight.uniform_(-bound, bound, *gen);
      (*layer)->bias.uniform_(-bound, bound, *gen);
    }
  }
  net_->to(device_);
  // Without train_branches (the TOM authors' code) the input branches keep their random
  // initialisation: only the joint trunk is optimised.
  std::vector<torch::Tensor> trained = settings_.train_branches ? net_->parameters() : std::vector<torch::Tensor>{};
  if (!settings_.train_branches) {
    for (auto* layer : {&net_->state_in, &net_->action_in, &net_->next_in})
      for (auto& p : (*layer)->parameters()) p.set_requires_grad(false);
    for (auto* layer : {&net_->joint, &net_->out})
      for (auto& p : (*layer)->parameters()) trained.push_back(p);
  }
  optimizer_ = std::make_unique<torch::optim::Adam>(trained, torch::optim::AdamOptions(settings_.lr));
}

Discriminator::~Discriminator() = default;

torch::Tensor Discriminator::rows(const Transitions& t, const char* name) const {
  const std::int64_t n = t.s.defined() && t.s.dim() == 2 ? t.s.size(0) : -1;
  auto ok = [&](const torch::Tensor& x, std::int64_t width) {
    return x.defined() && x.dim() == 2 && x.size(0) == n && x.size(1) == width;
  };
  if (n < 1 || !ok(t.s, state_dim_) || !ok(t.a, action_dim_) || !ok(t.s_next, state_dim_))
    fail("discriminator: {} transitions need non-empty s [N,{}], a [N,{}], s_next [N,{}] (got {}, {}, {})",
         name, state_dim_, action_dim_, state_dim_,
         t.s.defined() ? c10::str(t.s.sizes()) : "undefined",
         t.a.defined() ? c10::str(t.a.sizes()) : "undefined",
         t.s_next.defined() ? c10::str(t.s_next.sizes()) : "undefined");
  torch::Tensor x = torch::cat({t.s, t.a, t.s_next}, 1).to(device_, torch::kFloat32);
  if (!torch::isfinite(x).all().item<bool>())
    fail("discriminator: {} transitions contain NaN or inf", name);
  return x;
}

double Discriminator::step(const torch::Tensor& recent_rows, const torch::Tensor& buffer_rows,
                           at::Generator& gen) {
  PairedWork both(worker_, device_.is_cpu());
  return step(recent_rows, buffer_rows, gen, both);
}

double Discriminator::step(const torch::Tensor& recent_rows, const torch::Tensor& buffer_rows, at::Generator& gen,
                           PairedWork& both) {
  const auto b = recent_rows.size(0);
  if (buffer_rows.sizes() != recent_rows.sizes() || recent_rows.dim() != 2 ||
      recent_rows.size(1) != 2 * state_dim_ + action_dim_)
    fail("discriminator step: both sides need shape [B, {}] (got {} and {})",
         2 * state_dim_ + action_dim_, c10::str(recent_rows.sizes()), c10::str(buffer_rows.sizes()));
  const bool penalised = settings_.grad_penalty > 0.0;
  const auto alpha = penalised ? torch::rand({b, 1}, gen, recent_rows.options()) : torch::Tensor{};
  // The loss of rows [begin, end) of both sides (and their interpolates), as their share
  // of the batch means, backpropagated. The two halves' gradients add up in the
  // parameters' gradients (a + b, the same in either order), so 1 and 2 threads agree.
  const auto half = [&](std::int64_t begin, std::int64_t end, torch::Tensor& total) {
    if (end == begin) return;
    const auto n = end - begin;
    const auto recent = recent_rows.narrow(0, begin, n), buffer = buffer_rows.narrow(0, begin, n);
    std::vector<torch::Tensor> parts{recent, buffer};
    if (penalised) {
      const auto a = alpha.narrow(0, begin, n);
      parts.push_back(a * recent + (1.0 - a) * buffer);
    }
    // One forward over both sides and the interpolates.
    const auto [logits, grad_norm] = net_->forward(torch::cat(parts), penalised ? n : 0);
    const auto opts = logits.options();
    const auto sum = torch::Reduction::Sum;
    total = (torch::binary_cross_entropy_with_logits(logits.narrow(0, 0, n), torch::ones({n}, opts), {}, {}, sum) +
             torch::binary_cross_entropy_with_logits(logits.narrow(0, n, n),
                                                     torch::full({n}, settings_.buffer_label, opts), {}, {}, sum)) /
            static_cast<double>(b);
    if (penalised) total = total + settings_.grad_penalty * (grad_norm - 1.0).square().sum() / static_cast<double>(b);
    total.backward();
    total = total.detach();
  };
  torch::Tensor first, second;
  optimizer_->zero_grad();
  both([&] { half(0, b / 2, first); }, [&] { half(b / 2, b, second); });
  optimizer_->step();
  return (first.defined() ? first.item<double>() : 0.0) + second.item<double>();
}

double Discriminator::fit(const Transitions& recent, const Transitions& buffer,
                          at::Generator& gen) {
  const torch::Tensor recent_x = rows(recent, "recent");
  const torch::Tensor buffer_x = rows(buffer, "buffer");
  if (settings_.recreate) reset(&gen);
  const auto pool = recent_x.size(0), size = buffer_x.size(0);
  const auto index_options = torch::TensorOptions().dtype(torch::kLong).device(device_);
  double last_pass = 0.0;
  // For the whole fit: with 2+ threads every op between the steps' halves runs
  // single-threaded too, so no idle thread team spins against the halves' threads.
  PairedWork both(worker_, device_.is_cpu());
  for (int pass = 0; pass < settings_.passes; ++pass) {
    const auto order = torch::randperm(pool, gen, index_options);
    double sum = 0.0;
    int steps = 0;
    for (std::int64_t start = 0; start < pool; start += settings_.batch) {
      const auto len = std::min<std::int64_t>(settings_.batch, pool - start);
      const auto buffer_pick = torch::randint(size, {len}, gen, index_options);
      sum += step(recent_x.index_select(0, order.narrow(0, start, len)),
                  buffer_x.index_select(0, buffer_pick), gen, both);
      ++steps;
    }
    last_pass = sum / steps;
  }
  if (!std::isfinite(last_pass)) fail("discriminator: the loss diverged (lr {})", settings_.lr);
  return last_pass;
}

torch::Tensor Discriminator::log_ratio(const Transitions& transitions) const {
  const torch::Tensor x = rows(transitions, "scored");
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> chunks;
  for (std::int64_t start = 0; start < x.size(0); start += kLogitChunk)
    chunks.push_back(net_->forward(x.narrow(0, start, std::min(kLogitChunk, x.size(0) - start)), 0).first);
  return torch::cat(chunks);
}

void Discriminator::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive net, optimizer;
  net_->save(net);
  optimizer_->save(optimizer);
  archive.write("net", net);
  archive.write("optimizer", optimizer);
}

void Discriminator::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive net, optimizer;
  if (!archive.try_read("net", net) || !archive.try_read("optimizer", optimizer))
    fail("discriminator checkpoint is missing its network or optimiser");
  try {
    net_->load(net);
    optimizer_->load(optimizer);
  } catch (const c10::Error& e) {
    fail("discriminator checkpoint does not fit this discriminator ({})", e.what_without_backtrace());
  }
}

}  // namespace tom::objectives
