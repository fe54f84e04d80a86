// libFuzzer target: the settings loader (TOML files as --config and config.toml are
// read, and --set overrides), over fields of every kind the real settings use. The first
// byte picks the form of the rest: TOML, or overrides one per line. Bad input must end
// in tom::Error (a message for the user); any other exception or crash is a bug. An
// accepted document must survive the config.toml round trip unchanged.
// (The real Config pulls in LibTorch, whose headers clang cannot compile here; these
// fields exercise the same generic code: settings.cpp and settings_io.cpp.)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tom/core/error.hpp"
#include "tom/core/settings.hpp"
#include "tom/runs/settings_io.hpp"

namespace {

using tom::OneOf;
using tom::Range;

struct Sample {
  int hidden = 256;
  std::int64_t steps = 125000;
  double lr = 3e-4, gamma = 0.99, bias = 0.0;
  bool learn = true;
  std::string device = "cpu", form = "conjugate";
  template <class V>
  void visit(V& v) {
    v("hidden", hidden, "units", Range::at_least(1));
    v("steps", steps, "env steps", Range::at_least(0));
    v("lr", lr, "learning rate", Range::positive());
    v("gamma", gamma, "discount", Range::probability());
    v("bias", bias, "anything", Range::any());
    v("learn", learn, "on/off");
    v("device", device, "free text");
    v("form", form, "one of", OneOf{"conjugate", "conjugate-u", "minimax"});
  }
};

struct Settings {
  Sample a, b;
  std::vector<tom::SettingRef> fields() {
    auto all = tom::settings_of("run", a);
    const auto more = tom::settings_of("tom_dual", b);
    all.insert(all.end(), more.begin(), more.end());
    return all;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  Settings settings;
  try {
    if (data[0] % 2 == 0) {
      tom::runs::apply_toml(settings.fields(), text, "fuzz.toml");
    } else {
      std::vector<std::string> overrides;
      for (std::size_t at = 0; at <= text.size();) {
        const std::size_t end = std::min(text.find('\n', at), text.size());
        overrides.push_back(text.substr(at, end - at));
        at = end + 1;
      }
      tom::runs::apply_overrides(settings.fields(), overrides);
    }
    for (const auto& field : settings.fields()) field.check();
  } catch (const tom::Error&) {
    return 0;
  }
  const std::string saved = tom::runs::to_toml(settings.fields());
  Settings again;
  try {
    tom::runs::apply_toml(again.fields(), saved, "config.toml");
  } catch (const tom::Error& e) {
    std::fprintf(stderr, "accepted settings do not load back: %s\n%s\n", e.what(), saved.c_str());
    std::abort();
  }
  if (tom::runs::to_toml(again.fields()) != saved) {
    std::fprintf(stderr, "config.toml does not round-trip:\n%s\n---\n%s\n", saved.c_str(),
                 tom::runs::to_toml(again.fields()).c_str());
    std::abort();
  }
  return 0;
}
