"""Connected components by union-find: single-source bodies and the CPU launcher.

The forest lives in ``parent`` (one entry per node, ``parent[x] == x`` at a root). Every link
hooks the larger root under the smaller one, so ``parent[x] <= x`` always holds and the root of
a tree is the smallest node index in its component: the result is deterministic whatever the
order of the edges or the interleaving of GPU threads.

* :func:`find_root` (body, both targets) follows parents with *path halving*: every other node
  on the path is re-pointed to its grandparent. On the GPU these writes race with other
  threads, harmlessly: a node is only ever re-pointed to one of its ancestors, which keeps the
  ``parent[x] <= x`` invariant and every tree intact (as in ECL-CC, Jaiganesh & Burtscher 2018).
* :func:`label_node` (body) gives a node its final label, its root.
* CPU: :func:`connected_components_cpu` links the edges one after the other (union by min id),
  then labels all nodes in parallel. GPU: :mod:`gpulink.kernels.components_gpu` links with an
  atomic compare-and-swap per hook, then labels the same way.

>>> import numpy as np
>>> connected_components_cpu(5, np.array([3, 1]), np.array([4, 3])).tolist()
[0, 1, 2, 1, 1]
"""

from __future__ import annotations

import numba
import numpy as np

from gpulink.kernels._targets import cpu_jit, kernel_body, retarget_launcher


@kernel_body
def find_root(parent, x):
    """The root of ``x``'s tree, halving the path on the way (parent[y] <- parent[parent[y]]).

    Every local has the array's dtype (``x`` itself may be any integer, a prange index say), so
    the result has it too.
    """
    cur = parent[x]
    if cur == x:
        return cur
    nxt = parent[cur]
    if nxt == cur:
        return cur
    parent[x] = nxt
    cur = nxt
    while True:
        nxt = parent[cur]
        if nxt == cur:
            return cur
        gp = parent[nxt]
        if gp == nxt:
            return nxt
        parent[cur] = gp
        cur = gp


@kernel_body
def label_node(parent, labels, x):
    """``labels[x]`` = the root of ``x`` (the smallest node index of its component)."""
    labels[x] = find_root(parent, x)


def index_dtype(n_nodes: int):
    """int32 node indices while they fit (half the memory traffic), int64 beyond."""
    return np.int32 if n_nodes < 2**31 - 1 else np.int64


def _union_edges_cpu(parent, edges_l, edges_r):
    """Link every edge in turn: hook the larger of the two roots under the smaller."""
    for k in range(edges_l.shape[0]):
        a = find_root(parent, edges_l[k])
        b = find_root(parent, edges_r[k])
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b


def _label_all_cpu(parent, labels):
    # After all links, find_root only reads (path halving writes ancestors): safe in parallel.
    for x in numba.prange(labels.shape[0]):
        label_node(parent, labels, x)


_union_cpu = None
_label_cpu = None


def _cpu_launchers():
    global _union_cpu, _label_cpu
    if _union_cpu is None:
        _union_cpu = cpu_jit(retarget_launcher(_union_edges_cpu, "cpu"))
        # The labelling pass writes parent[] (path halving) from several threads; every write
        # stores an ancestor, so any interleaving gives the same labels.
        _label_cpu = cpu_jit(parallel=True)(retarget_launcher(_label_all_cpu, "cpu"))
    return _union_cpu, _label_cpu


def _prepare(n_nodes: int, edges_l, edges_r):
    dtype = index_dtype(n_nodes)
    edges_l = np.ascontiguousarray(edges_l, dtype=dtype)
    edges_r = np.ascontiguousarray(edges_r, dtype=dtype)
    if edges_l.shape != edges_r.shape or edges_l.ndim != 1:
        raise ValueError("edges_l and edges_r must be 1-d arrays of the same length")
    if edges_l.size and (
        min(edges_l.min(), edges_r.min()) < 0 or max(edges_l.max(), edges_r.max()) >= n_nodes
    ):
        raise ValueError(f"edge endpoints must be node indices in [0, {n_nodes})")
    return dtype, edges_l, edges_r


def connected_components_cpu(n_nodes: int, edges_l, edges_r) -> np.ndarray:
    """Per node the smallest node index of its connected component (CPU, Numba).

    Self loops and duplicate edges are allowed; a node with no edge is its own component.

    >>> connected_components_cpu(3, np.array([2]), np.array([2])).tolist()
    [0, 1, 2]
    """
    dtype, edges_l, edges_r = _prepare(n_nodes, edges_l, edges_r)
    parent = np.arange(n_nodes, dtype=dtype)
    labels = np.empty(n_nodes, dtype=dtype)
    union, label = _cpu_launchers()
    if edges_l.size:
        union(parent, edges_l, edges_r)
    if n_nodes:
        label(parent, labels)
    return labels


def connected_components_reference(n_nodes: int, edges_l, edges_r) -> np.ndarray:
    """Plain Python union-find: the obviously-correct reference the fast paths are tested on.

    >>> connected_components_reference(4, [1, 3], [2, 1]).tolist()
    [0, 1, 1, 1]
    """
    parent = list(range(n_nodes))

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in zip(edges_l, edges_r):
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(x) for x in range(n_nodes)], dtype=np.int64)
