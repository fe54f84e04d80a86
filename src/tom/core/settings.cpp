#include "tom/core/settings.hpp"

#include <algorithm>
#include <cmath>

namespace tom {

void Range::check(const std::string& name, double value) const {
  if (!std::isfinite(value)) fail("setting {} must be a finite number (got {})", name, value);
  const bool below = min_open ? value <= min : value < min;
  if (below || value > max) {
    const std::string lo = std::isinf(min) ? "-inf" : fmt::format("{}", min);
    const std::string hi = std::isinf(max) ? "inf" : fmt::format("{}", max);
    fail("setting {} = {} is out of range {}{}, {}]", name, value, min_open ? "(" : "[", lo, hi);
  }
}

void OneOf::check(const std::string& name, const std::string& value) const {
  if (std::find(values.begin(), values.end(), value) == values.end())
    fail("setting {} = '{}' is not one of: {}", name, value, join(values));
}

}  // namespace tom

namespace tom {
namespace {

template <typename Int>
Int parse_integer(const std::string& key, const std::string& text) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    fail("setting {} expects an integer (got '{}')", key, text);
  }
  if (used != text.size()) fail("setting {} expects an integer (got '{}')", key, text);
  if (value < std::numeric_limits<Int>::min() || value > std::numeric_limits<Int>::max())
    fail("setting {} = {} does not fit its integer type", key, text);
  return static_cast<Int>(value);
}

}  // namespace

std::string SettingRef::to_string() const {
  return std::visit(
      [](auto* field) -> std::string {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, bool>) return *field ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::string>) return *field;
        // -0.0 keeps its sign as TOML's float -0.0: "-0" would read back as the integer 0.
        else if constexpr (std::is_same_v<T, double>)
          return *field == 0.0 && std::signbit(*field) ? "-0.0" : fmt::format("{}", *field);
        else return std::to_string(*field);
      },
      value);
}

void SettingRef::parse(const std::string& text) const {
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, bool>) {
          if (text == "true" || text == "1") *field = true;
          else if (text == "false" || text == "0") *field = false;
          else fail("setting {} expects true or false (got '{}')", key, text);
        } else if constexpr (std::is_same_v<T, std::string>) {
          *field = text;
        } else if constexpr (std::is_same_v<T, double>) {
          std::size_t used = 0;
          double parsed = 0.0;
          try {
            parsed = std::stod(text, &used);
          } catch (const std::exception&) {
            fail("setting {} expects a number (got '{}')", key, text);
          }
          if (used != text.size()) fail("setting {} expects a number (got '{}')", key, text);
          *field = parsed;
        } else {
          *field = parse_integer<T>(key, text);
        }
      },
      value);
}

void SettingRef::check() const {
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (one_of) one_of->check(key, *field);
        } else if constexpr (!std::is_same_v<T, bool>) {
          if (range) range->check(key, static_cast<double>(*field));
        }
      },
      value);
}

}  // namespace tom
