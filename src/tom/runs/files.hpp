#pragma once
#include <filesystem>
#include <string>

namespace tom::runs {

// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed
// to disk, then renamed over `path`. A crash leaves either the old file or the new one.
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

// Reads a whole file; throws tom::Error naming the path if it cannot.
std::string read_file(const std::filesystem::path& path);

}  // namespace tom::runs
