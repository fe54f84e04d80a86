#include "tom/results/reference_curves.hpp"

#include <map>
#include <sstream>

#include "tom/core/error.hpp"

namespace tom::runs {

const std::map<std::string, std::string>& embedded_reference_curves();  // generated from assets/reference_curves

std::vector<std::pair<double, double>> published_curve(const std::string& algo, const std::string& env) {
  const auto& files = embedded_reference_curves();
  const auto it = files.find("published.csv");
  if (it == files.end()) fail("the published curves were not compiled in (assets/reference_curves/published.csv)");
  std::string task = env;
  if (task.ends_with("-v5")) task.resize(task.size() - 3);
  std::vector<std::pair<double, double>> out;
  std::istringstream in(it->second);
  std::string line;
  std::getline(in, line);  // header: algo,env,step,return_mean,...
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    std::string cell;
    while (std::getline(cells_in, cell, ',')) cells.push_back(cell);
    if (cells.size() >= 4 && cells[0] == algo && cells[1] == task)
      out.emplace_back(std::stod(cells[2]), std::stod(cells[3]));
  }
  return out;
}

}  // namespace tom::runs
