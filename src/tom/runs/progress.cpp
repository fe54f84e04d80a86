#include "tom/runs/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/core.h>

namespace tom::runs {
namespace {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--";
  const auto s = static_cast<long>(seconds);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace

Progress::Progress(std::int64_t start_step, std::int64_t total_steps)
    : start_step_(start_step), total_steps_(total_steps), start_(Clock::now()), last_draw_(start_),
      tty_(isatty(fileno(stdout)) != 0), last_step_(start_step) {}

void Progress::update(std::int64_t step) {
  last_step_ = step;
  draw(step, false);
}

void Progress::draw(std::int64_t step, bool force) {
  const auto now = Clock::now();
  const double since_draw = std::chrono::duration<double>(now - last_draw_).count();
  // A terminal redraws often; a log gets one line every 30 s.
  if (!force && since_draw < (tty_ ? 0.25 : 30.0)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(step - start_step_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_steps_ - step) / rate : -1.0;
  const double fraction = total_steps_ > 0 ? static_cast<double>(step) / static_cast<double>(total_steps_) : 1.0;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    fmt::print("\r[{}{}] {}/{} steps  {:.0f} steps/s  ETA {}\033[K", std::string(filled, '#'),
               std::string(kWidth - filled, '-'), step, total_steps_, rate, format_duration(eta));
    bar_visible_ = true;
  } else {
    fmt::print("step {}/{} ({:.0f}%)  {:.1f} steps/s  ETA {}\n", step, total_steps_, 100 * fraction, rate,
               format_duration(eta));
  }
  std::fflush(stdout);
}

void Progress::message(const std::string& line) {
  if (tty_ && bar_visible_) fmt::print("\r\033[K");
  fmt::print("{}\n", line);
  bar_visible_ = false;
  if (tty_) draw(last_step_, true);
  std::fflush(stdout);
}

void Progress::finish() {
  if (tty_ && bar_visible_) fmt::print("\n");
  bar_visible_ = false;
  std::fflush(stdout);
}

}  // namespace tom::runs
