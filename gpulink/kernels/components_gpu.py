"""Connected components on the GPU: lock-free union-find with atomic compare-and-swap.

The bodies (:func:`~gpulink.kernels.components.find_root`, ``label_node``) are the CPU build's,
compiled as device functions. Linking: each thread takes edges in a grid-stride loop, finds both
roots and hooks the larger under the smaller with ``atomic.cas(parent, hi, hi, lo)``: the hook
succeeds only if ``hi`` is still a root; otherwise another thread has hooked it meanwhile and
the thread retries from the parent the atomic returned (smaller than ``hi``, so it terminates). Hooks always go from a larger to a smaller index, so no
cycle can form and the final roots are the component minima, as on the CPU.

Nothing here runs at import; the CUDA kernels compile at their first launch.
"""

from __future__ import annotations

import numpy as np

from gpulink.kernels import _cuda
from gpulink.kernels._cuda import cuda
from gpulink.kernels._targets import retarget_launcher
from gpulink.kernels.components import _prepare, find_root, label_node  # noqa: F401

DEFAULT_THREADS_PER_BLOCK = 256


def _union_edges_gpu(parent, edges_l, edges_r):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for k in range(start, edges_l.shape[0], stride):
        a = find_root(parent, edges_l[k])
        b = find_root(parent, edges_r[k])
        while a != b:
            hi = max(a, b)
            lo = min(a, b)
            old = cuda.atomic.cas(parent, hi, hi, lo)
            if old == hi:
                break  # hooked
            # hi stopped being a root under us. ``old`` came from the atomic, so it is fresh
            # and smaller than hi: climbing on from it always makes progress, even if a plain
            # (possibly cached) load inside find_root returns an older parent.
            a = find_root(parent, old)
            b = lo


def _label_all_gpu(parent, labels):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for x in range(start, labels.shape[0], stride):
        label_node(parent, labels, x)


_KERNELS: dict[str, object] = {}


def gpu_kernels():
    """The two CUDA kernels (link, label), built once from the single-source bodies."""
    if not _KERNELS:
        _KERNELS["union"] = _cuda.kernel(retarget_launcher(_union_edges_gpu, "gpu"))
        _KERNELS["label"] = _cuda.kernel(retarget_launcher(_label_all_gpu, "gpu"))
    return _KERNELS["union"], _KERNELS["label"]


def _blocks(n: int, threads: int, cap: int = 65_535) -> int:
    return max(1, min(cap, (n + threads - 1) // threads))


def connected_components_gpu(
    n_nodes: int, edges_l, edges_r, *, threads_per_block: int = DEFAULT_THREADS_PER_BLOCK
) -> np.ndarray:
    """Per node the smallest node index of its component, computed on the GPU; host result.

    Same contract as :func:`gpulink.kernels.components.connected_components_cpu`. Host (numpy)
    edges are copied to the device; device arrays (cupy or numba) are used where they are when
    they already have the index dtype.
    """
    dtype = np.int32 if n_nodes < 2**31 - 1 else np.int64
    if hasattr(edges_l, "__cuda_array_interface__") and np.dtype(edges_l.dtype) == dtype:
        d_l, d_r = cuda.as_cuda_array(edges_l), cuda.as_cuda_array(edges_r)
    else:
        _, host_l, host_r = _prepare(n_nodes, np.asarray(edges_l), np.asarray(edges_r))
        d_l, d_r = cuda.to_device(host_l), cuda.to_device(host_r)
    d_parent = cuda.to_device(np.arange(n_nodes, dtype=dtype))
    d_labels = cuda.device_array(n_nodes, dtype=dtype)
    union, label = gpu_kernels()
    n_edges = d_l.shape[0]
    if n_edges:
        union[_blocks(n_edges, threads_per_block), threads_per_block](d_parent, d_l, d_r)
    if n_nodes:
        label[_blocks(n_nodes, threads_per_block), threads_per_block](d_parent, d_labels)
    return d_labels.copy_to_host()


def compile_ptx_for(cc=(9, 0)) -> dict[str, str]:
    """PTX of both kernels for int32 and int64 indices (works without a GPU or a driver)."""
    from numba import types

    out = {}
    for name, launcher in (("union", _union_edges_gpu), ("label", _label_all_gpu)):
        fn = retarget_launcher(launcher, "gpu")
        for ty in (types.int32, types.int64):
            arr = types.Array(ty, 1, "C")
            sig = (arr, arr, arr) if name == "union" else (arr, arr)
            ptx, _ = _cuda.compile_ptx(fn, sig, cc=cc)
            out[f"{name}_{ty}"] = ptx
    return out
