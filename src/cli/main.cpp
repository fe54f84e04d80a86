// `tom`: the command-line front end. Parses, calls one entry point, prints.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/core/allocator.hpp"
#include "tom/core/blas_kernel.hpp"
#include "tom/core/error.hpp"

int main(int argc, char** argv) {
  tom::select_blas_kernel(argv);
  tom::keep_large_blocks_in_heap();
  CLI::App app{"tom-rl: model-based reinforcement learning with policy-aware model learning"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tom-rl 0.1");
  tom::cli::add_env_commands(app);
  tom::cli::add_run_commands(app);
  tom::cli::add_verify_command(app);
  tom::cli::add_compare_command(app);
  tom::cli::add_plot_command(app);
  tom::cli::add_sweep_command(app);
  tom::cli::add_render_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const tom::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
