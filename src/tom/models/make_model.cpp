#include "tom/models/make_model.hpp"

#include "tom/core/error.hpp"

namespace tom::models {

std::unique_ptr<DynamicsModel> make_model(const std::string& name, const EnsembleSettings& ensemble,
                                          const MdnSettings& mdn, int obs_dim, int action_dim, std::uint64_t seed,
                                          torch::Device device) {
  if (name == "ensemble") return std::make_unique<ProbabilisticEnsemble>(obs_dim, action_dim, ensemble, seed, device);
  if (name == "mdn") return std::make_unique<MixtureDensityNetwork>(obs_dim, action_dim, mdn, seed, device);
  fail_unknown("unknown dynamics model '{}' (valid: ensemble, mdn)", name);
}

}  // namespace tom::models
