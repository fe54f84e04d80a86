#pragma once
// Each file in src/cli adds its subcommands to the `tom` program.
#include <CLI/CLI.hpp>

namespace tom::cli {

void add_env_commands(CLI::App& app);  // envs, rollout
void add_verify_command(CLI::App& app);
void add_run_commands(CLI::App& app);  // train, eval, config  // verify-weights
void add_compare_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_sweep_command(CLI::App& app);  // sweep, sweep status
void add_render_command(CLI::App& app);

}  // namespace tom::cli
