#pragma once
// Small helpers for checkpoint archives (torch::serialize): scalars, strings and
// required entries, with tom::Error naming what is missing.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/serialize/archive.h>
#include <torch/types.h>

namespace tom {

// The tensor stored under `key`; throws tom::Error naming `what` and the key if absent.
torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& key, const char* what);

void write_int(torch::serialize::OutputArchive& archive, const std::string& key, std::int64_t value);
std::int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key, const char* what);
void write_double(torch::serialize::OutputArchive& archive, const std::string& key, double value);
double read_double(torch::serialize::InputArchive& archive, const std::string& key, const char* what);
// A list of exactly `count` numbers (any floating type), e.g. stored counters and figures.
std::vector<double> read_doubles(torch::serialize::InputArchive& archive, const std::string& key,
                                 std::int64_t count, const char* what);
// What a checkpoint file would give back: `archive` written to bytes and read again
// (also a deep copy of saved state).
torch::serialize::InputArchive reread(torch::serialize::OutputArchive& archive);

void write_string(torch::serialize::OutputArchive& archive, const std::string& key, const std::string& value);
std::string read_string(torch::serialize::InputArchive& archive, const std::string& key, const char* what);

}  // namespace tom
