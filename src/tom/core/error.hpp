#pragma once
// Errors the user can act on. Every bad input (unknown name, malformed value, wrong
// shape, NaN, corrupt file) is reported by throwing tom::Error with a message that
// names the problem; the CLI prints it and exits with status 1.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace tom {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An unknown name (task, setting, objective, family...): a tom::Error the Python package
// raises as a KeyError.
class UnknownName : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void fail_unknown(fmt::format_string<Args...> format, Args&&... args) {
  throw UnknownName(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Joins names for messages such as "valid names: a, b, c".
std::string join(const auto& names, const char* separator = ", ") {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += separator;
    out += name;
  }
  return out;
}

}  // namespace tom
