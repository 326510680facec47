// The functions of the Python module vaezoo._C (python_entry.cpp), for its module definition in ops.cpp.
#pragma once

#include <Python.h>

namespace vaezoo {

PyMethodDef* python_methods();

}  // namespace vaezoo
