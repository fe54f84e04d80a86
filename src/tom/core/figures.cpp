#include "tom/core/figures.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "tom/core/error.hpp"

namespace tom {

void Figures::operator()(std::string_view name, double value) {
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) fail("figure '{}' is named twice", name);
  names_.emplace_back(name);
  values_.push_back(value);
}

FigureReader::FigureReader(torch::serialize::InputArchive& archive, const std::string& key, const char* what)
    : key_(key), what_(what) {
  if (!archive.try_read(key, part_)) fail("{} checkpoint has no entry '{}'", what, key);
}

void FigureReader::operator()(std::string_view name, double& value) {
  torch::Tensor tensor;
  if (!part_.try_read(std::string(name), tensor))
    fail("{} checkpoint entry '{}' has no figure '{}' (written by another version?)", what_, key_, name);
  if (tensor.numel() != 1 || tensor.scalar_type() != torch::kFloat64)
    fail("{} checkpoint figure '{}.{}' is not a number", what_, key_, name);
  value = tensor.item<double>();
}

void FigureReader::operator()(std::string_view name, std::int64_t& value) {
  double stored = 0.0;
  (*this)(name, stored);
  // Counts are stored as float64, exact up to 2^53.
  if (!(std::abs(stored) <= 9007199254740992.0) || stored != std::trunc(stored))
    fail("{} checkpoint figure '{}.{}' is not a whole number ({})", what_, key_, name, stored);
  value = static_cast<std::int64_t>(stored);
}

void FigureReader::operator()(std::string_view name, int& value) {
  std::int64_t wide = 0;
  (*this)(name, wide);
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max())
    fail("{} checkpoint figure '{}.{}' is out of range ({})", what_, key_, name, wide);
  value = static_cast<int>(wide);
}

void write_figures(torch::serialize::OutputArchive& archive, const std::string& key, const Figures& figures) {
  torch::serialize::OutputArchive part;
  for (std::size_t i = 0; i < figures.names().size(); ++i)
    part.write(figures.names()[i], torch::tensor(figures.values()[i], torch::kFloat64));
  archive.write(key, part);
}

}  // namespace tom
