#pragma once
// Progress of a run: a live bar with steps/s and ETA on a terminal, plain periodic lines
// when the output is not a terminal (logs, CI).
#include <chrono>
#include <cstdint>
#include <string>

namespace tom::runs {

class Progress {
 public:
  Progress(std::int64_t start_step, std::int64_t total_steps);
  void update(std::int64_t step);
  // A line that stays (evaluation results, warnings): printed above the bar.
  void message(const std::string& line);
  void finish();

 private:
  void draw(std::int64_t step, bool force);
  using Clock = std::chrono::steady_clock;
  std::int64_t start_step_, total_steps_;
  Clock::time_point start_, last_draw_;
  bool tty_;
  bool bar_visible_ = false;
  std::int64_t last_step_ = 0;
};

}  // namespace tom::runs
