// The `_tomrl` extension: tom-rl's environments, runs and models for the tomrl package.
#include <cmath>

#include <pybind11/pybind11.h>
#include <torch/torch.h>

#include "bindings.hpp"
#include "tom/core/error.hpp"
#include "tom/envs/registry.hpp"

namespace tom::python {

Array to_array(const std::vector<double>& values, std::vector<py::ssize_t> shape) {
  Array out(shape);
  std::copy(values.begin(), values.end(), out.mutable_data());
  return out;
}

Rows rows_of(const Array& array, py::ssize_t width, const char* what) {
  if (array.ndim() == 1 && array.shape(0) == width) return {array.data(), 1, width, true};
  if (array.ndim() == 2 && array.shape(1) == width) return {array.data(), array.shape(0), width, false};
  std::string shape;
  for (py::ssize_t d = 0; d < array.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(array.shape(d));
  if (array.ndim() == 1) shape += ",";
  fail("{} has shape ({}); expected ({},) or (batch, {})", what, shape, width, width);
}

Rows finite_rows_of(const Array& array, py::ssize_t width, const char* what) {
  const Rows rows = rows_of(array, width, what);
  for (py::ssize_t i = 0; i < rows.count * rows.width; ++i)
    if (!std::isfinite(rows.data[i]))
      fail("{} holds a non-finite value ({}) at row {}, column {}", what, rows.data[i], i / width, i % width);
  return rows;
}

torch::Tensor rows_tensor(const Rows& rows) {
  return torch::from_blob(const_cast<double*>(rows.data), {rows.count, rows.width}, torch::kFloat64).clone();
}

Array tensor_array(const torch::Tensor& t) {
  const auto values = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  Array out(std::vector<py::ssize_t>(values.sizes().begin(), values.sizes().end()));
  std::copy(values.data_ptr<double>(), values.data_ptr<double>() + values.numel(), out.mutable_data());
  return out;
}

Array answer(const torch::Tensor& t, const Rows& asked) { return tensor_array(asked.single ? t.select(0, 0) : t); }

}  // namespace tom::python

PYBIND11_MODULE(_tomrl, m) {
  namespace py = pybind11;
  m.doc() = "tom-rl's C++ library: environments, runs, models (use the tomrl package, not this module)";
  // Every bad input the library reports is a tom::Error: a ValueError in Python, and an
  // unknown name a KeyError as well (both also tomrl.Error).
  static py::exception<tom::Error> error(m, "Error", PyExc_ValueError);
  static py::handle unknown_name = PyErr_NewException(
      "_tomrl.UnknownNameError", py::make_tuple(error, py::handle(PyExc_KeyError)).release().ptr(), nullptr);
  m.attr("UnknownNameError") = unknown_name;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tom::UnknownName& e) {
      PyErr_SetString(unknown_name.ptr(), e.what());
    } catch (const tom::Error& e) {
      error(e.what());
    }
  });
  tom::python::bind_envs(m);
  tom::python::bind_runs(m);
  tom::python::bind_user_envs(m);
  tom::python::bind_model_learning(m);
}
