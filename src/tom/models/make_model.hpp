#pragma once
// The dynamics model a run's settings name (mbpo.model), for the task's dimensions.
#include <cstdint>
#include <memory>
#include <string>

#include "tom/models/dynamics_model.hpp"
#include "tom/models/ensemble.hpp"
#include "tom/models/mdn.hpp"

namespace tom::models {

// name: ensemble (MBPO's probabilistic ensemble) or mdn (the TOM authors' mixture density
// network); another name is a tom::Error listing the valid ones.
std::unique_ptr<DynamicsModel> make_model(const std::string& name, const EnsembleSettings& ensemble,
                                          const MdnSettings& mdn, int obs_dim, int action_dim, std::uint64_t seed,
                                          torch::Device device);

}  // namespace tom::models
