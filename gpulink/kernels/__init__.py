"""Single-source kernels: plain Python bodies compiled for the CPU (Numba) and the GPU (CUDA).

See :mod:`gpulink.kernels._targets` for how one body becomes two builds.
"""
