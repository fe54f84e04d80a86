// End-to-end: `tom render` writes an MP4 of a run's policy with the expected number of
// frames (ffprobe counts them), the requested size, and frames that are not blank.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "run_util.hpp"

namespace fs = std::filesystem;
using tom::test::run_tom;

namespace {

std::string capture(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string out;
  char buffer[65536];
  while (std::size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

}  // namespace

TEST(Render, VideoHasOneFramePerStepTheRightSizeAndIsNotBlank) {
  if (std::system("ffmpeg -version > /dev/null 2>&1") != 0 || std::system("ffprobe -version > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "ffmpeg/ffprobe are not installed (apt-get install ffmpeg)";
  const fs::path dir = tom::test::fresh_dir("render");
  ASSERT_EQ(run_tom({"train", "--algo", "sac", "--env", "inverted_pendulum", "--steps", "300", "--eval-every", "300", "--threads", "1",
                     "--eval-episodes", "1", "--set", "sac.hidden_size=32", "--set", "sac_loop.random_steps=200",
                     "--set", "sac_loop.update_after=200", "--out", dir.string()},
                    dir.string() + ".train.log"),
            0);
  const fs::path video = dir / "episode.mp4";
  const int status = run_tom({"render", dir.string(), "--out", video.string(), "--width", "320", "--height", "240",
                              "--steps", "40"},
                             dir.string() + ".render.log");
  const std::string log = tom::test::read_text(dir.string() + ".render.log");
  if (status != 0 && (log.find("EGL") != std::string::npos || log.find("offscreen") != std::string::npos))
    GTEST_SKIP() << "no offscreen OpenGL here: " << log;
  ASSERT_EQ(status, 0) << log;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"((\d+) frames \((\d+) steps)"))) << log;
  const int frames = std::stoi(m[1]), steps = std::stoi(m[2]);
  EXPECT_EQ(frames, steps + 1);  // the start state, then one frame per step
  EXPECT_GE(steps, 1);
  EXPECT_LE(steps, 40);

  const std::string probe = capture("ffprobe -v error -select_streams v:0 -count_frames -show_entries "
                                    "stream=codec_name,width,height,nb_read_frames -of csv=p=0 '" +
                                    video.string() + "'");
  EXPECT_EQ(probe, "h264,320,240," + std::to_string(frames) + "\n");

  // The first frame, as grey levels: a drawn scene has many levels and real contrast.
  const std::string gray = capture("ffmpeg -v error -i '" + video.string() +
                                   "' -frames:v 1 -f rawvideo -pix_fmt gray -");
  ASSERT_EQ(gray.size(), 320u * 240u);
  std::set<unsigned char> levels(gray.begin(), gray.end());
  double mean = 0, var = 0;
  for (unsigned char c : gray) mean += c;
  mean /= gray.size();
  for (unsigned char c : gray) var += (c - mean) * (c - mean);
  EXPECT_GT(levels.size(), 20u);
  EXPECT_GT(std::sqrt(var / gray.size()), 5.0);
  fs::remove_all(dir);
}
