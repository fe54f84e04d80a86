#pragma once
// Reading and writing settings: TOML config files, `section.name=value` overrides from
// the command line, and the fully resolved config a run directory keeps.
#include <map>
#include <string>
#include <vector>

#include "tom/core/settings.hpp"

namespace tom::runs {

// Applies the TOML document `text` (named `source` in messages) to the fields. Every
// key in the document must name a field; a value of the wrong type is an error.
void apply_toml(const std::vector<SettingRef>& fields, const std::string& text, const std::string& source);

// Applies overrides such as "sac.lr=1e-3"; unknown keys are errors listing the section's keys.
void apply_overrides(const std::vector<SettingRef>& fields, const std::vector<std::string>& overrides);

// Flattens a TOML document's tables to "table.key" -> value text (strings unquoted,
// booleans as true/false); throws tom::Error naming `source` when it is not TOML.
std::map<std::string, std::string> flatten_toml(const std::string& text, const std::string& source);

// The fields as a TOML document, one table per section, with each help text as a comment.
std::string to_toml(const std::vector<SettingRef>& fields);

// Files compiled in from configs/ (path relative to configs/ -> contents).
const std::map<std::string, std::string>& embedded_configs();

}  // namespace tom::runs
