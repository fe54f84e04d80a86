// The `_tomrl` extension: tom-rl's environments, runs and models for the tomrl package.
#include <pybind11/pybind11.h>

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
}
