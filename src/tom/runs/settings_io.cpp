#include "tom/runs/settings_io.hpp"

#include <algorithm>
#include <sstream>

#include <toml++/toml.h>

#include "tom/core/error.hpp"

namespace tom::runs {
namespace {

const SettingRef* find_field(const std::vector<SettingRef>& fields, const std::string& key) {
  auto it = std::find_if(fields.begin(), fields.end(), [&](const SettingRef& f) { return f.key == key; });
  return it == fields.end() ? nullptr : &*it;
}

std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }

std::vector<std::string> keys_in_section(const std::vector<SettingRef>& fields, const std::string& section) {
  std::vector<std::string> keys;
  for (const auto& f : fields)
    if (section_of(f.key) == section) keys.push_back(f.key);
  return keys;
}

[[noreturn]] void unknown_key(const std::vector<SettingRef>& fields, const std::string& key,
                              const std::string& source) {
  const auto known = keys_in_section(fields, section_of(key));
  if (known.empty()) {
    std::vector<std::string> sections;
    for (const auto& f : fields)
      if (std::find(sections.begin(), sections.end(), section_of(f.key)) == sections.end())
        sections.push_back(section_of(f.key));
    fail("{}: unknown setting '{}' (sections: {})", source, key, join(sections));
  }
  fail("{}: unknown setting '{}' (valid: {})", source, key, join(known));
}

// TOML values keep their type: an integer may fill a double field, nothing else converts.
void assign(const SettingRef& field, const toml::node& node, const std::string& source) {
  std::visit(
      [&](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        bool ok = false;
        if constexpr (std::is_same_v<T, bool>) {
          if (auto v = node.value_exact<bool>()) *target = *v, ok = true;
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (auto v = node.value_exact<std::string>()) *target = *v, ok = true;
        } else if constexpr (std::is_same_v<T, double>) {
          if (auto v = node.value<double>(); v && (node.is_floating_point() || node.is_integer()))
            *target = *v, ok = true;
        } else {
          if (auto v = node.value_exact<std::int64_t>()) {
            field.parse(std::to_string(*v));  // range of the integer type checked there
            ok = true;
          }
        }
        if (!ok) {
          const char* expected = std::is_same_v<T, bool>          ? "true or false"
                                 : std::is_same_v<T, std::string> ? "a string"
                                 : std::is_same_v<T, double>      ? "a number"
                                                                  : "an integer";
          fail("{}: setting {} expects {}", source, field.key, expected);
        }
      },
      field.value);
}

}  // namespace

void apply_toml(const std::vector<SettingRef>& fields, const std::string& text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    fail("{}:{}:{}: {}", source, where.line, where.column, e.description());
  }
  for (const auto& [section, node] : doc) {
    const auto* table = node.as_table();
    if (!table) fail("{}: '{}' must be a [section] table", source, section.str());
    for (const auto& [name, value] : *table) {
      const std::string key = std::string(section.str()) + "." + std::string(name.str());
      const SettingRef* field = find_field(fields, key);
      if (!field) unknown_key(fields, key, source);
      assign(*field, value, source);
    }
  }
}

void apply_overrides(const std::vector<SettingRef>& fields, const std::vector<std::string>& overrides) {
  for (const auto& item : overrides) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      fail("override '{}' must look like section.name=value (e.g. sac.lr=1e-3)", item);
    const std::string key = item.substr(0, eq);
    const SettingRef* field = find_field(fields, key);
    if (!field) unknown_key(fields, key, "command line");
    field->parse(item.substr(eq + 1));
  }
}

std::string to_toml(const std::vector<SettingRef>& fields) {
  std::ostringstream out;
  std::string section;
  for (const auto& f : fields) {
    if (section_of(f.key) != section) {
      section = section_of(f.key);
      out << (out.tellp() > 0 ? "\n" : "") << "[" << section << "]\n";
    }
    const std::string name = f.key.substr(f.key.find('.') + 1);
    const bool is_string = std::holds_alternative<std::string*>(f.value);
    std::string value = f.to_string();
    if (is_string) {
      std::ostringstream quoted;
      quoted << toml::value<std::string>(value);
      value = quoted.str();
    }
    out << name << " = " << value << "  # " << f.help << "\n";
  }
  return out.str();
}

}  // namespace tom::runs
