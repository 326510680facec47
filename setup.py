"""Build vaezoo with its compiled operators, vaezoo._C (csrc/), when a compiler is at hand.

The C++ CPU kernels are built whenever a C++ compiler works. The CUDA kernels are added when a CUDA toolkit
(CUDA_HOME / nvcc) and a CUDA build of torch are present; a GPU is not needed to build them.

Environment variables:
  VAEZOO_NO_EXTENSION=1   build no extension: pure Python, reference path only
  VAEZOO_CUDA=0|1         force the CUDA kernels off or on (on: a failed build is an error)
  TORCH_CUDA_ARCH_LIST    CUDA architectures (default: DEFAULT_CUDA_ARCHS below)
  MAX_JOBS                parallel compile jobs (ninja)

Without torch at build time, or when compiling fails (and VAEZOO_CUDA is not 1), the package installs without
the extension and runs on the reference path.
"""
from __future__ import annotations

import glob
import os
import sys

from setuptools import setup

DEFAULT_CUDA_ARCHS = "8.0;8.6;9.0;10.0;12.0+PTX"
CPU_SOURCES = [
    "csrc/ops.cpp", "csrc/python_entry.cpp", "csrc/checks.cpp", "csrc/autograd.cpp", "csrc/cpu/reparameterize_cpu.cpp"
]
CUDA_SOURCES = ["csrc/cuda/reparameterize_cuda.cu"]


def _env_flag(name: str) -> bool | None:
    """True/False when the variable is set to a yes/no value, None when unset or empty."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    return value not in ("0", "false", "no", "off")


def _cuda_include_dirs(site_packages: str) -> list[str]:
    """nvidia/cu*/include of pip's CUDA wheels (cusparse.h and friends, needed by ATen/cuda headers)."""
    return sorted(glob.glob(os.path.join(site_packages, "nvidia", "cu*", "include")))


def _extension_build() -> dict:
    """setup() keywords that build vaezoo._C, or none when it is switched off or torch is missing."""
    if _env_flag("VAEZOO_NO_EXTENSION"):
        return {}
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        print("vaezoo: torch is not importable at build time; installing without vaezoo._C", file=sys.stderr)
        return {}

    forced_cuda = _env_flag("VAEZOO_CUDA")
    with_cuda = forced_cuda if forced_cuda is not None else (
        torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None
    )
    cxx_flags = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
    kwargs = dict(
        name="vaezoo._C",
        sources=CPU_SOURCES,
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=["-fopenmp"],
    )
    if with_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
        site_packages = os.path.dirname(os.path.dirname(torch.__file__))
        kwargs["sources"] = CPU_SOURCES + CUDA_SOURCES
        kwargs["include_dirs"] = _cuda_include_dirs(site_packages)
        kwargs["extra_compile_args"]["nvcc"] = ["-O3", "--expt-relaxed-constexpr"]
        extension = cpp_extension.CUDAExtension(**kwargs)
    else:
        extension = cpp_extension.CppExtension(**kwargs)

    class OptionalBuildExtension(cpp_extension.BuildExtension):
        """Builds vaezoo._C; when the CUDA part fails (and was not forced on) retries the C++ part alone, and
        when that fails too, warns and installs without the extension."""

        def build_extensions(self) -> None:
            try:
                super().build_extensions()
                return
            except Exception as err:  # compiler or toolkit missing or failing
                if forced_cuda:
                    raise
                print(f"vaezoo: building vaezoo._C failed ({err})", file=sys.stderr)
            if with_cuda:
                print("vaezoo: retrying without the CUDA kernels", file=sys.stderr)
                extension.sources = [s for s in extension.sources if not s.endswith(".cu")]
                extension.extra_compile_args.pop("nvcc", None)
                extension.libraries = [lib for lib in extension.libraries if "cuda" not in lib]
                torch_dir = os.path.dirname(torch.__file__)
                extension.library_dirs = [d for d in extension.library_dirs if d.startswith(torch_dir)]
                try:
                    super().build_extensions()
                    return
                except Exception as err:
                    print(f"vaezoo: building vaezoo._C without CUDA failed too ({err})", file=sys.stderr)
            print("vaezoo: installing without vaezoo._C; reparameterize runs on the reference path", file=sys.stderr)
            self.extensions = []

        def get_outputs(self) -> list[str]:
            return [self.get_ext_fullpath(e.name) for e in self.extensions]

    return {"ext_modules": [extension], "cmdclass": {"build_ext": OptionalBuildExtension.with_options(use_ninja=True)}}


setup(**_extension_build())
