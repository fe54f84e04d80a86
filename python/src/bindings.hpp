#pragma once
// The pieces of the `_tomrl` extension, one function per room of the library it opens,
// and the array conversions they share. Arrays cross as float64 numpy arrays; shapes are
// checked here, values (NaN/inf, ranges) by the library, whose tom::Error becomes a
// Python exception (module.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <torch/types.h>

namespace tom::python {

namespace py = pybind11;
using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

void bind_envs(py::module_& m);
void bind_runs(py::module_& m);
void bind_user_envs(py::module_& m);
void bind_model_learning(py::module_& m);

// A float64 array of `shape` holding a copy of `values`.
Array to_array(const std::vector<double>& values, std::vector<py::ssize_t> shape);
// The rows of `array` as a [rows, width] view: a 1-D array of `width` entries is one row.
// Throws tom::Error naming `what` for any other shape.
struct Rows {
  const double* data;
  py::ssize_t count, width;
  bool single;  // the input was one row (1-D): answers are 1-D too
};
Rows rows_of(const Array& array, py::ssize_t width, const char* what);
// rows_of, and every value finite (else tom::Error naming `what` and the entry).
Rows finite_rows_of(const Array& array, py::ssize_t width, const char* what);
// The rows as a [count, width] float64 tensor (a copy), and a tensor [count, width] back
// as an array shaped like the rows asked with (1-D for a single row).
torch::Tensor rows_tensor(const Rows& rows);
// A copy of a tensor (any device, any floating dtype) as a float64 array of its shape.
Array tensor_array(const torch::Tensor& t);
Array answer(const torch::Tensor& t, const Rows& asked);

}  // namespace tom::python
