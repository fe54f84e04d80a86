#include "tom/runs/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "tom/core/threads.hpp"
#include "tom/runs/build_info.hpp"
#include "tom/envs/registry.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/provenance.hpp"
#include "tom/runs/settings_io.hpp"

namespace tom::runs {
namespace {

// "hopper-v5" reads the defaults of "hopper": the tasks share their learning settings.
std::string base_task(const std::string& env) {
  const auto dash = env.find("-v");
  return dash == std::string::npos ? env : env.substr(0, dash);
}

// A run records the thread count it ran with, so that a resume on the same machine
// continues exactly.
void resolve_thread_count(Config& config) {
  if (config.run.threads == 0) config.run.threads = available_cores();
}

}  // namespace

std::vector<SettingRef> Config::fields() {
  std::vector<SettingRef> all;
  for (auto&& part : {settings_of("run", run), settings_of("sac_loop", sac_loop), settings_of("sac", sac),
                      settings_of("mbpo", mbpo), settings_of("pets", pets), settings_of("cem", cem),
                      settings_of("distill", distill),
                      settings_of("ensemble", ensemble), settings_of("mdn", mdn),
                      settings_of("objective", objective.choice), settings_of("tom", objective.tom),
                      settings_of("tom_dual", objective.dual), settings_of("discriminator", objective.discriminator),
                      settings_of("pmac", objective.pmac), settings_of("vagram", objective.vagram),
                      settings_of("provenance", provenance)})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

void Config::check() {
  for (const auto& field : fields()) field.check();
  const auto names = envs::env_names();
  if (std::find(names.begin(), names.end(), run.env) == names.end())
    fail("setting run.env = '{}' is not a task; valid: {}", run.env, join(names));
  const BackboneEntry& backbone = backbone_entry(run.algo);
  if (!backbone.learns_model && objective.choice.name != "mle") {
    std::vector<std::string> model_based;
    for (const auto& entry : backbone_registry())
      if (entry.learns_model) model_based.emplace_back(entry.name);
    fail("setting objective.name = '{}' needs a model-based backbone (run.algo = {}); {} learns no model",
         objective.choice.name, join(model_based, " or "), run.algo);
  }
  if (const auto missing = objectives::missing_view(objective.choice.name, backbone.offers, run.algo);
      !missing.empty())
    fail("setting objective.name = '{}': {}", objective.choice.name, missing);
  if (run.device != "cpu" && !run.device.starts_with("cuda"))
    fail("setting run.device = '{}' is not a device (cpu, cuda or cuda:N)", run.device);
}

namespace {

constexpr RetiredSetting kRetired[] = {
    {"tom_dual.normalise",
     "TOM's weights are rescaled to mean 1 where the model-learning stage takes them, whatever it said"},
};

}  // namespace

std::span<const RetiredSetting> retired_settings() { return kRetired; }

std::vector<std::string> family_names() {
  std::set<std::string> names;
  for (const auto& [path, text] : embedded_configs())
    if (path.starts_with("families/")) names.insert(path.substr(9, path.find('/', 9) - 9));
  return {names.begin(), names.end()};
}

std::vector<std::string> family_choices() {
  std::vector<std::string> choices{""};
  for (auto& name : family_names()) choices.push_back(std::move(name));
  return choices;
}

namespace {

Config resolve_sources(const ConfigSources& sources) {
  Config config;
  config.run.env = sources.env;
  config.run.family = sources.family;
  auto fields = config.fields();
  const auto& files = embedded_configs();
  const std::string task_file = base_task(sources.env) + ".toml";
  if (auto it = files.find(task_file); it != files.end())
    apply_toml(fields, it->second, "configs/" + task_file, Origin::user, kRetired);
  if (!sources.family.empty()) {
    const std::string family_file = "families/" + sources.family + "/" + task_file;
    const auto it = files.find(family_file);
    if (it == files.end()) {
      std::vector<std::string> families;
      for (const auto& [name, text] : files)
        if (name.starts_with("families/") && name.ends_with("/" + task_file))
          families.push_back(name.substr(9, name.size() - 9 - task_file.size() - 1));
      fail_unknown("there is no setting family '{}' for {} (families for it: {})", sources.family, base_task(sources.env),
           families.empty() ? "none" : join(families));
    }
    apply_toml(fields, it->second, "configs/" + family_file, Origin::user, kRetired);
  }
  if (!sources.user_file.empty())
    apply_toml(fields, read_file(sources.user_file), sources.user_file, Origin::user, kRetired);
  apply_overrides(fields, sources.overrides, kRetired, sources.overrides_source);
  const Provenance& given = config.provenance;
  if (!given.revision.empty() || given.dirty || !given.build_type.empty() || !given.resumed_by.empty())
    fail("the provenance section is recorded by tom when a run is created, not a setting; remove provenance.* "
         "from {}",
         sources.user_file.empty() ? "the overrides" : sources.user_file + " and the overrides");
  config.check();
  resolve_thread_count(config);
  record_binary(config, /*creating=*/true);
  return config;
}

}  // namespace

Config resolve_config(const ConfigSources& sources) {
  Config config = resolve_sources(sources);
  const std::string_view family = backbone_entry(config.run.algo).family;
  if (!sources.family.empty() || family.empty()) return config;
  // A backbone without a family runs its paper's settings for the task (MBPO: mbpo-paper);
  // a task the paper did not run (a registered one) keeps the defaults.
  const std::string family_file = "families/" + std::string(family) + "/" + base_task(sources.env) + ".toml";
  if (!embedded_configs().contains(family_file)) return config;
  ConfigSources with_family = sources;
  with_family.family = family;
  return resolve_sources(with_family);
}

std::vector<std::string> budget_warnings(const Config& config) {
  std::vector<std::string> warnings;
  const BackboneEntry& backbone = backbone_entry(config.run.algo);
  const std::int64_t starts = backbone.learning_starts(config);
  if (config.run.steps <= starts)
    warnings.push_back(fmt::format("the budget of {} steps ends before learning starts: {} learns only after {} = {} "
                                   "steps; raise --steps above {}",
                                   config.run.steps, config.run.algo, backbone.learning_starts_setting, starts, starts));
  return warnings;
}

Config load_run_config(const std::string& toml_text, const std::string& source,
                       const std::vector<std::string>& overrides) {
  Config config;
  auto fields = config.fields();
  apply_toml(fields, toml_text, source, Origin::run_record, kRetired);
  apply_overrides(fields, overrides, kRetired);
  config.check();
  resolve_thread_count(config);
  return config;
}

std::string config_to_toml(Config& config) { return to_toml(config.fields()); }

std::string target_entropy_meaning(const Config& config) {
  const auto env = envs::make_env(config.run.env);
  const auto& spec = env->spec();
  double log_half_ranges = 0.0;  // sum log((high - low) / 2): action-units entropy less unit entropy
  for (int i = 0; i < spec.action_dim; ++i) log_half_ranges += std::log(0.5 * (spec.action_high[i] - spec.action_low[i]));
  const double target = config.sac.auto_target_entropy ? -spec.action_dim : config.sac.target_entropy;
  if (config.sac.entropy_units == "action")
    return fmt::format("sac: target entropy {:.4g} nats of the action in the task's units (sac.entropy_units = action), "
                       "{:.4g} nats of the tanh-squashed unit action",
                       target, target - log_half_ranges);
  return fmt::format("sac: target entropy {:.4g} nats of the tanh-squashed unit action (sac.entropy_units = unit), "
                     "{:.4g} nats of the action in the task's units",
                     target, target + log_half_ranges);
}

bool record_binary(Config& config, bool creating) {
  auto& p = config.provenance;
  const auto& built = build_info();
  if (creating) {
    if (p.revision == built.revision && p.dirty == built.dirty && p.build_type == built.build_type) return false;
    p.revision = built.revision;
    p.dirty = built.dirty;
    p.build_type = built.build_type;
    return true;
  }
  const std::string mine = binary_label(built.revision, built.dirty);
  std::map<std::string, std::string> recorded{{"provenance.revision", p.revision},
                                              {"provenance.dirty", p.dirty ? "true" : "false"},
                                              {"provenance.resumed_by", p.resumed_by}};
  const auto known = binaries_of(recorded);
  // A dirty build may differ from another of the same label, so it is listed each time.
  if (!built.dirty && std::find(known.begin(), known.end(), mine) != known.end()) return false;
  p.resumed_by += (p.resumed_by.empty() ? "" : ",") + mine;
  return true;
}

std::map<std::string, std::string> resumed_settings(const std::string& toml_text, const std::string& source) {
  auto settings = flatten_toml(toml_text, source);
  for (const RetiredSetting& gone : kRetired) settings.erase(std::string(gone.key));
  try {
    Config config = load_run_config(toml_text, source);
    for (auto& [key, value] : flatten_toml(config_to_toml(config), source)) settings.emplace(key, value);
  } catch (const Error&) {
  }
  return settings;
}

}  // namespace tom::runs
