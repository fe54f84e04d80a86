#pragma once
// Reading and writing settings: TOML config files, `section.name=value` overrides from
// the command line, and the fully resolved config a run directory keeps.
#include <map>
#include <span>
#include <string>
#include <vector>

#include "tom/core/settings.hpp"

namespace tom::runs {

// A setting an earlier version had, with why it went. A run directory's own config.toml
// may still hold it and is read without it; a file or override a user gives that sets it
// is an error quoting `why`.
struct RetiredSetting {
  std::string_view key;  // "section.name"
  std::string_view why;
};

// Who wrote a TOML document: a user (every key must name a field) or a run directory's
// recorded config (retired keys are skipped).
enum class Origin { user, run_record };

// Applies the TOML document `text` (named `source` in messages) to the fields. Every
// key in the document must name a field (or, in a run record, a retired setting); a value
// of the wrong type is an error.
void apply_toml(const std::vector<SettingRef>& fields, const std::string& text, const std::string& source,
                Origin origin = Origin::user, std::span<const RetiredSetting> retired = {});

// Applies overrides such as "sac.lr=1e-3"; unknown keys are errors listing the section's
// keys, retired ones errors saying why they went.
// `source` names where they came from in messages.
void apply_overrides(const std::vector<SettingRef>& fields, const std::vector<std::string>& overrides,
                     std::span<const RetiredSetting> retired = {}, const std::string& source = "command line");

// Flattens a TOML document's tables to "table.key" -> value text (strings unquoted,
// booleans as true/false); throws tom::Error naming `source` when it is not TOML.
std::map<std::string, std::string> flatten_toml(const std::string& text, const std::string& source);

// The fields as a TOML document, one table per section, with each help text as a comment.
std::string to_toml(const std::vector<SettingRef>& fields);

// Files compiled in from configs/ (path relative to configs/ -> contents).
const std::map<std::string, std::string>& embedded_configs();

}  // namespace tom::runs
