#pragma once
// The complete settings of a run: one section per piece. Defaults come from the structs,
// then configs/<task>.toml (compiled in), then a user's --config file, then
// command-line overrides; the resolved result is written to the run directory.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "tom/agents/sac.hpp"
#include "tom/agents/cem_planner.hpp"
#include "tom/backbones/mbpo_trainer.hpp"
#include "tom/backbones/pets_trainer.hpp"
#include "tom/backbones/sac_trainer.hpp"
#include "tom/core/settings.hpp"
#include "tom/models/make_model.hpp"
#include "tom/objectives/make_objective.hpp"
#include "tom/runs/backbone_registry.hpp"
#include "tom/runs/settings_io.hpp"

namespace tom::runs {

// The setting families (configs/families/<name>/), sorted; family_choices() adds "" (none).
std::vector<std::string> family_names();
std::vector<std::string> family_choices();

struct RunSettings {
  std::string algo = "sac";
  std::string family;
  std::string env = "hopper";
  std::int64_t steps = 100000;
  std::int64_t seed = 0;
  int threads = 0;  // resolved to available_cores() when a run is created
  std::string device = "cpu";
  std::string precision = "fp32";
  std::int64_t eval_every = 5000;
  int eval_episodes = 10;
  std::int64_t checkpoint_every = 10000;
  bool stop_at_return = false;
  double target_return = 0.0;

  // Whether an evaluation's mean return ends the run (stop_at_return and it reached
  // target_return): the run loop stops there, resuming does nothing, a sweep counts the
  // run finished.
  bool reached_target(double eval_return_mean) const { return stop_at_return && eval_return_mean >= target_return; }

  template <class V>
  void visit(V& v) {
    v("algo", algo, "backbone: sac (model-free), mbpo or pets (runs/backbone_registry.hpp lists them)", OneOf{backbone_names()});
    v("family", family, "setting family the run was created with (choose it with --family)",
      OneOf{family_choices()});
    v("env", env, "task name (tom envs lists them)");
    v("steps", steps, "environment steps to train for", Range::at_least(1));
    v("seed", seed, "random seed", Range::at_least(0));
    v("threads", threads,
      "CPU threads; 0 = every core this process may use, resolved and recorded when the run is created; 1 = "
      "bit-identical to any other 1-thread run of the same seed",
      Range::between(0, 256));
    v("device", device, "LibTorch device: cpu, cuda or cuda:N");
    v("precision", precision,
      "matrix products of the networks: fp32 (LibTorch's), fp32-fused (oneDNN's, bias and ReLU in the product), or "
      "bf16 (CPUs with AVX512-BF16: inputs rounded to bfloat16, sums, weights and losses in fp32; "
      "docs/precision.md)",
      OneOf{"fp32", "fp32-fused", "bf16"});
    v("eval_every", eval_every, "env steps between evaluations", Range::at_least(1));
    v("eval_episodes", eval_episodes, "deterministic episodes per evaluation", Range::at_least(1));
    v("checkpoint_every", checkpoint_every, "env steps between checkpoints", Range::at_least(1));
    v("stop_at_return", stop_at_return,
      "end the run at the first evaluation whose mean return reaches target_return (it then counts as finished)");
    v("target_return", target_return, "the mean evaluation return stop_at_return waits for", Range::any());
  }
};

// What built the run's binary (runs/build_info.hpp), written when the run is created. Not
// a setting: a config file or override that sets it is refused.
struct Provenance {
  std::string revision;    // git commit; empty in runs made before tom recorded it
  bool dirty = false;      // built from a checkout with changes not in that commit
  std::string build_type;  // CMake's build type
  std::string resumed_by;  // other binaries that continued the run: "revision[+dirty]", comma-separated

  template <class V>
  void visit(V& v) {
    v("revision", revision, "recorded: git commit of the tom binary that created the run");
    v("dirty", dirty, "recorded: that binary was built from a checkout with uncommitted changes");
    v("build_type", build_type, "recorded: that binary's CMake build type");
    v("resumed_by", resumed_by, "recorded: other binaries that continued the run (revision[+dirty], comma-separated)");
  }
};

struct Config {
  RunSettings run;
  backbones::SacLoopSettings sac_loop;
  agents::SacSettings sac;
  backbones::MbpoSettings mbpo;
  backbones::PetsSettings pets;
  agents::CemSettings cem;  // PETS's planner
  agents::DistillSettings distill;  // PETS's policy for objectives that need one
  models::EnsembleSettings ensemble;
  models::MdnSettings mdn;
  objectives::ObjectiveSettings objective;  // sections objective, tom, tom_dual, discriminator, pmac, vagram
  Provenance provenance;

  // Every field of every section, as "section.name" references into this object.
  std::vector<SettingRef> fields();
  // Checks every field, and the combinations no single field can check.
  void check();
};

struct ConfigSources {
  std::string env = "hopper";
  std::string family;                   // configs/families/<family>/<task>.toml, optional
  std::string user_file;                // --config FILE, optional
  std::vector<std::string> overrides;   // "section.name=value", applied last
  std::string overrides_source = "command line";  // where they came from, for messages
};

// Resolves the config of a new run; throws tom::Error naming any bad file, key or value.
// An MBPO run without a family gets the mbpo-paper family of its task.
Config resolve_config(const ConfigSources& sources);
// What a user should hear before a run starts: a budget that ends before any learning.
std::vector<std::string> budget_warnings(const Config& config);
// Settings earlier versions had: a run's config.toml is read without them, a user who
// sets one hears why it went.
std::span<const RetiredSetting> retired_settings();
// The config of an existing run directory (its config.toml), with optional overrides.
Config load_run_config(const std::string& toml_text, const std::string& source,
                       const std::vector<std::string>& overrides = {});
std::string config_to_toml(Config& config);
// What SAC's target entropy means on the config's task, in both units: "sac: target
// entropy -17 nats of the action in the task's units (sac.entropy_units = action), -1.42
// nats of the tanh-squashed unit action" (for tom config).
std::string target_entropy_meaning(const Config& config);
// Records this binary in config.provenance: as the creator of a new run, or (resuming) in
// resumed_by when it is not one of the binaries already listed (a dirty build always is
// listed). Returns whether the provenance changed.
bool record_binary(Config& config, bool creating);
// A run's settings as `tom train --resume` would run it: its config.toml flattened
// ("section.key" -> value text), plus the settings an older version did not write, at
// the values a resume gives them; so runs made before and after a setting was added
// compare as one arm. A config.toml this version cannot load keeps its own keys only.
std::map<std::string, std::string> resumed_settings(const std::string& toml_text, const std::string& source);

}  // namespace tom::runs
