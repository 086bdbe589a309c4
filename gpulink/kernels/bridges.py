"""Bridges of an undirected multigraph in O(V + E): single-source bodies and the CPU launcher.

An edge is a *bridge* when removing it disconnects its two ends. Tarjan's criterion: in a
depth-first search forest, the tree edge ``u -> v`` is a bridge iff ``low[v] > disc[u]``, where
``disc[x]`` is the order in which ``x`` was discovered and ``low[x]`` the smallest ``disc``
reachable from ``x``'s subtree by tree edges down and at most one non-tree edge. Non-tree edges
are never bridges.

* :func:`build_adjacency` (body) lays the edge list out as a CSR adjacency by counting sort:
  node ``x``'s neighbours are ``adj_node[indptr[x]:indptr[x + 1]]``, with the id of the edge
  that reaches each in ``adj_edge``.
* :func:`mark_bridges` (body) runs the search with an explicit stack (no recursion, so deep
  chains do not overflow) and skips the edge a node was *entered by*, not its parent node: of
  two parallel edges between the same nodes, neither is a bridge. A self loop never is.

Both are sequential bodies (one search over the whole graph); bodies allocate nothing, so the
caller passes every buffer.

>>> import numpy as np
>>> bridges_cpu(4, np.array([0, 1, 2, 2]), np.array([1, 2, 0, 3])).tolist()
[False, False, False, True]
"""

from __future__ import annotations

import numpy as np

from gpulink.kernels._targets import cpu, kernel_body


@kernel_body
def build_adjacency(n_nodes, edges_l, edges_r, indptr, fill, adj_node, adj_edge):
    """CSR adjacency of the undirected edges ``(edges_l[e], edges_r[e])`` by counting sort.

    ``indptr`` has ``n_nodes + 1`` entries, ``fill`` ``n_nodes``, ``adj_node`` and ``adj_edge``
    ``2 * n_edges``. Each edge appears once at each end (a self loop twice at its node).
    """
    for x in range(n_nodes + 1):
        indptr[x] = 0
    for e in range(edges_l.shape[0]):
        indptr[edges_l[e] + 1] += 1
        indptr[edges_r[e] + 1] += 1
    for x in range(n_nodes):
        indptr[x + 1] += indptr[x]
        fill[x] = indptr[x]
    for e in range(edges_l.shape[0]):
        a = edges_l[e]
        b = edges_r[e]
        adj_node[fill[a]] = b
        adj_edge[fill[a]] = e
        fill[a] += 1
        adj_node[fill[b]] = a
        adj_edge[fill[b]] = e
        fill[b] += 1


@kernel_body
def mark_bridges(n_nodes, indptr, adj_node, adj_edge, disc, low, entry_edge, cursor, stack, out):
    """``out[e]`` = True iff edge ``e`` is a bridge (iterative Tarjan; ``out`` starts False).

    Scratch of ``n_nodes`` entries each: ``disc``, ``low``, ``entry_edge`` (the tree edge a node
    was reached by, -1 at a root), ``cursor`` (next adjacency slot to scan), ``stack``.
    """
    for x in range(n_nodes):
        disc[x] = -1
    timer = 0
    for root in range(n_nodes):
        if disc[root] != -1:
            continue
        disc[root] = timer
        low[root] = timer
        timer += 1
        entry_edge[root] = -1
        cursor[root] = indptr[root]
        top = 0
        stack[0] = root
        while top >= 0:
            v = stack[top]
            k = cursor[v]
            if k < indptr[v + 1]:
                cursor[v] = k + 1
                e = adj_edge[k]
                if e == entry_edge[v]:
                    continue
                w = adj_node[k]
                if disc[w] == -1:
                    entry_edge[w] = e
                    disc[w] = timer
                    low[w] = timer
                    timer += 1
                    cursor[w] = indptr[w]
                    top += 1
                    stack[top] = w
                elif disc[w] < low[v]:
                    low[v] = disc[w]
            else:
                top -= 1
                if top >= 0:
                    u = stack[top]
                    if low[v] < low[u]:
                        low[u] = low[v]
                    if low[v] > disc[u]:
                        out[entry_edge[v]] = True


def bridges_cpu(n_nodes: int, edges_l, edges_r) -> np.ndarray:
    """Per edge, whether it is a bridge (CPU, Numba); endpoints are node indices < ``n_nodes``.

    Parallel edges and self loops are allowed (neither is ever a bridge).

    >>> bridges_cpu(3, np.array([0, 0, 1]), np.array([1, 1, 2])).tolist()
    [False, False, True]
    """
    edges_l = np.ascontiguousarray(edges_l, dtype=np.int64)
    edges_r = np.ascontiguousarray(edges_r, dtype=np.int64)
    if edges_l.shape != edges_r.shape or edges_l.ndim != 1:
        raise ValueError("edges_l and edges_r must be 1-d arrays of the same length")
    if edges_l.size and (
        min(edges_l.min(), edges_r.min()) < 0 or max(edges_l.max(), edges_r.max()) >= n_nodes
    ):
        raise ValueError(f"edge endpoints must be node indices in [0, {n_nodes})")
    n_edges = edges_l.size
    out = np.zeros(n_edges, dtype=np.bool_)
    if n_edges == 0:
        return out
    indptr = np.empty(n_nodes + 1, dtype=np.int64)
    adj_node = np.empty(2 * n_edges, dtype=np.int64)
    adj_edge = np.empty(2 * n_edges, dtype=np.int64)
    scratch = np.empty((5, n_nodes), dtype=np.int64)
    fill, disc, low, entry_edge, cursor = scratch
    cpu(build_adjacency)(n_nodes, edges_l, edges_r, indptr, fill, adj_node, adj_edge)
    stack = fill  # free again once the adjacency is built
    cpu(mark_bridges)(
        n_nodes, indptr, adj_node, adj_edge, disc, low, entry_edge, cursor, stack, out
    )
    return out
