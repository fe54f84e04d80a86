#include "tom/envs/registered.hpp"

#include <map>
#include <mutex>

#include "tom/core/error.hpp"

namespace tom::envs {
namespace {

// Guarded: a registration may come from one thread while a run builds envs on another.
struct Registry {
  std::mutex mutex;
  std::map<std::string, RegisteredEnv> envs;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

void register_env(const std::string& name, EnvMaker make, TerminationFn termination) {
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos)
    fail("environment name '{}': use 1 to 64 letters, digits, '_' or '-'", name);
  if (is_builtin_env(name)) fail("environment name '{}' is a built-in task's; choose another", name);
  if (!make) fail("environment '{}' needs a maker", name);
  auto& r = registry();
  const std::lock_guard lock(r.mutex);
  r.envs[name] = RegisteredEnv{std::move(make), std::move(termination)};
}

bool unregister_env(const std::string& name) {
  auto& r = registry();
  const std::lock_guard lock(r.mutex);
  return r.envs.erase(name) > 0;
}

std::optional<RegisteredEnv> find_registered(const std::string& name) {
  auto& r = registry();
  const std::lock_guard lock(r.mutex);
  const auto it = r.envs.find(name);
  if (it == r.envs.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> registered_names() {
  auto& r = registry();
  const std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, env] : r.envs) names.push_back(name);
  return names;
}

}  // namespace tom::envs
