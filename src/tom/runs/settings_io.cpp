#include "tom/runs/settings_io.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "tom/core/error.hpp"

namespace tom::runs {
namespace {

// Where `text` stops being well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF), or npos.
std::size_t first_invalid_utf8(const std::string& text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : 4;
    if (extra == 4 || i + extra >= text.size() + (extra == 0 ? 1 : 0)) return i;
    for (std::size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return i;
    const auto next = extra > 0 ? static_cast<unsigned char>(text[i + 1]) : 0;
    if (c == 0xC0 || c == 0xC1 || c >= 0xF5 || (c == 0xE0 && next < 0xA0) || (c == 0xED && next >= 0xA0) ||
        (c == 0xF0 && next < 0x90) || (c == 0xF4 && next >= 0x90))
      return i;
    i += extra + 1;
  }
  return std::string::npos;
}

// `text` with every byte outside printable ASCII written as \xNN, for error messages.
std::string printable(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F) {
      out += ch;
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

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

const RetiredSetting* find_retired(std::span<const RetiredSetting> retired, const std::string& key) {
  auto it = std::find_if(retired.begin(), retired.end(), [&](const RetiredSetting& r) { return r.key == key; });
  return it == retired.end() ? nullptr : &*it;
}

[[noreturn]] void unknown_key(const std::vector<SettingRef>& fields, std::span<const RetiredSetting> retired,
                              const std::string& key, const std::string& source) {
  if (const RetiredSetting* gone = find_retired(retired, key))
    fail("{}: setting '{}' was removed ({}); delete it", source, key, gone->why);
  const auto known = keys_in_section(fields, section_of(key));
  if (known.empty()) {
    std::vector<std::string> sections;
    for (const auto& f : fields)
      if (std::find(sections.begin(), sections.end(), section_of(f.key)) == sections.end())
        sections.push_back(section_of(f.key));
    fail_unknown("{}: unknown setting '{}' (sections: {})", source, key, join(sections));
  }
  fail_unknown("{}: unknown setting '{}' (valid: {})", source, key, join(known));
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

std::string node_text(const toml::node& node) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  std::ostringstream out;
  if (auto a = node.as_array()) out << *a;
  else if (auto t = node.as_table()) out << *t;
  return out.str();
}

void flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : table) {
    const std::string name = prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (auto sub = node.as_table()) flatten(*sub, name, out);
    else out[name] = node_text(node);
  }
}

}  // namespace

void apply_toml(const std::vector<SettingRef>& fields, const std::string& text, const std::string& source,
                Origin origin, std::span<const RetiredSetting> retired) {
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
      if (!field && origin == Origin::run_record && find_retired(retired, key)) continue;
      if (!field) unknown_key(fields, retired, key, source);
      assign(*field, value, source);
    }
  }
}

void apply_overrides(const std::vector<SettingRef>& fields, const std::vector<std::string>& overrides,
                     std::span<const RetiredSetting> retired, const std::string& source) {
  for (const auto& item : overrides) {
    if (const auto bad = first_invalid_utf8(item); bad != std::string::npos)
      fail("override '{}' is not valid UTF-8 text (byte {}), which config.toml cannot keep", printable(item), bad);
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      fail("override '{}' must look like section.name=value (e.g. sac.actor_lr=1e-3)", item);
    const std::string key = item.substr(0, eq);
    const SettingRef* field = find_field(fields, key);
    if (!field) unknown_key(fields, retired, key, source);
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

std::map<std::string, std::string> flatten_toml(const std::string& text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    fail("{} is not valid TOML: {}", source, e.description());
  }
  std::map<std::string, std::string> out;
  flatten(doc, "", out);
  return out;
}

}  // namespace tom::runs
