"""Graphs made from a spec instead of read from a file, in the sparse families that rudy (Rinaldi's generator
of the G-set) draws from, for Max-Cut at any size without a large file:

    toroidal:316x316                      a 2-D toroidal grid (G48's family; 20x20x20 for a 3-D torus)
    random:n=100000,degree=8,seed=0       a uniform random graph with n * degree / 2 edges (G1's and G60's family)
    planar:n=100000,density=99,seed=0     a random planar graph: the Delaunay triangulation of n random points,
                                          density percent of the 3n - 6 edges of a maximal planar graph kept
    ... ,weights=pm1                      +1 / -1 edge weights, each with probability 1/2 (G11's), default 1

The same spec and numpy give the same graph (every draw comes from numpy's PCG64 seeded by `seed`, default 0);
these are graphs of rudy's kinds, not rudy's own graphs (its random number stream is its own). `parse_spec`
checks a spec and `generate` builds its symmetric CSR adjacency (empty diagonal) in O(n + m) memory, as the
readers return it; `alm-bench graph generate SPEC -o FILE` writes it as rudy text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from alm_bench.conic.readers.checks import MAX_ENTRIES, MAX_ORDER, GraphFile
from alm_bench.errors import UserError

FAMILIES = ("toroidal", "random", "planar")
WEIGHTS = ("1", "pm1")
# The keys each family takes (toroidal also takes its dimensions positionally: 316x316).
KEYS = {"toroidal": ("weights", "seed"), "random": ("n", "degree", "m", "weights", "seed"),
        "planar": ("n", "density", "weights", "seed")}
SPEC = re.compile(r"^([a-z]+):(.*)$")
DIMS = re.compile(r"^\d+(x\d+)+$")


@dataclass(frozen=True)
class GraphSpec:
    family: str
    options: dict[str, str] = field(default_factory=dict)
    dims: tuple[int, ...] = ()
    text: str = ""

    @property
    def seed(self) -> int:
        return _int(self, "seed", self.options.get("seed", "0"), minimum=0)

    @property
    def name(self) -> str:
        """A file-name-safe label: 'random-n100000-degree8-seed0'."""
        parts = ["x".join(map(str, self.dims))] if self.dims else []
        parts += [f"{k}{v}" for k, v in self.options.items()]
        return "-".join([self.family, *parts])


def is_spec(text: str) -> bool:
    """Whether `text` names a generator ('family:...') rather than a file."""
    match = SPEC.match(text.strip())
    return bool(match) and match.group(1) in FAMILIES


def parse_spec(text: str) -> GraphSpec:
    """The spec 'family:item,item,...' (items key=value, or toroidal's RxC) checked, or a one-line error."""
    match = SPEC.match(text.strip())
    if not match or match.group(1) not in FAMILIES:
        raise UserError(f"graph spec {text!r}: expected FAMILY:OPTIONS with FAMILY one of {', '.join(FAMILIES)} "
                        f"(e.g. toroidal:316x316, random:n=100000,degree=8,seed=0, planar:n=10000,density=99)")
    family, body = match.groups()
    options: dict[str, str] = {}
    dims: tuple[int, ...] = ()
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, sep, value = item.partition("=")
        if not sep and family == "toroidal" and DIMS.match(item) and not dims:
            dims = tuple(int(d) for d in item.split("x"))
            continue
        if not sep or not value:
            raise UserError(f"graph spec {text!r}: expected key=value, got {item!r}")
        if key not in KEYS[family]:
            raise UserError(f"graph spec {text!r}: {family} takes {', '.join(KEYS[family])}, not {key!r}")
        if key in options:
            raise UserError(f"graph spec {text!r}: {key} is given twice")
        options[key] = value
    spec = GraphSpec(family, options, dims, text.strip())
    _check(spec)
    return spec


def _int(spec: GraphSpec, key: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"graph spec {spec.text!r}: {key} must be an integer, got {value!r}") from None
    if number < minimum:
        raise UserError(f"graph spec {spec.text!r}: {key} must be >= {minimum}, got {number}")
    return number


def _float(spec: GraphSpec, key: str, value: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"graph spec {spec.text!r}: {key} must be a number, got {value!r}") from None
    if not low < number <= high:
        raise UserError(f"graph spec {spec.text!r}: {key} must be in ({low:g}, {high:g}], got {value}")
    return number


def _check(spec: GraphSpec) -> None:
    """Every option's value, and the sizes against the readers' limits, before anything is allocated."""
    o = spec.options
    _ = spec.seed
    if o.get("weights", "1") not in WEIGHTS:
        raise UserError(f"graph spec {spec.text!r}: weights must be one of {', '.join(WEIGHTS)}, got {o['weights']!r}")
    if spec.family == "toroidal":
        if not spec.dims:
            raise UserError(f"graph spec {spec.text!r}: toroidal needs its dimensions, e.g. toroidal:316x316")
        if min(spec.dims) < 3:   # a cycle of 2 would give a double edge, of 1 a self loop
            raise UserError(f"graph spec {spec.text!r}: every toroidal dimension must be >= 3, got {spec.dims}")
        n, m = math.prod(spec.dims), len(spec.dims) * math.prod(spec.dims)
    else:
        if "n" not in o:
            raise UserError(f"graph spec {spec.text!r}: {spec.family} needs n=VERTICES")
        n = _int(spec, "n", o["n"], minimum=3 if spec.family == "planar" else 2)
        if spec.family == "random":
            if ("degree" in o) == ("m" in o):
                raise UserError(f"graph spec {spec.text!r}: random needs one of degree=AVERAGE_DEGREE or m=EDGES")
            pairs = n * (n - 1) // 2
            m = (_int(spec, "m", o["m"], minimum=1) if "m" in o
                 else round(n * _float(spec, "degree", o["degree"], 0.0, n - 1) / 2))
            if not 1 <= m <= pairs:
                raise UserError(f"graph spec {spec.text!r}: {m} edges do not fit a simple graph on {n} vertices "
                                f"(1..{pairs})")
        else:
            m = 3 * n - 6
            _float(spec, "density", o.get("density", "100"), 0.0, 100.0)
    if n > MAX_ORDER or m > MAX_ENTRIES:
        raise UserError(f"graph spec {spec.text!r}: {n} vertices and {m} edges exceed the limits "
                        f"({MAX_ORDER} vertices, {MAX_ENTRIES} edges)")


def generate(spec: GraphSpec | str) -> sp.csr_matrix:
    """The weighted adjacency of the spec's graph: symmetric float64 CSR, empty diagonal, sorted indices."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    rng = np.random.default_rng(spec.seed)
    n, rows, cols = {"toroidal": _toroidal, "random": _random, "planar": _planar}[spec.family](spec, rng)
    if rows.size == 0:   # as a file without edges is refused: every cut is 0
        raise UserError(f"graph spec {spec.text!r}: the graph has no edges (raise density)")
    if spec.options.get("weights", "1") == "pm1":
        weights = rng.choice(np.array([-1.0, 1.0]), size=rows.size)
    else:
        weights = np.ones(rows.size)
    upper = sp.coo_matrix((weights, (rows, cols)), shape=(n, n))
    w = (upper + upper.T).tocsr()
    w.sort_indices()
    return w


def _toroidal(spec: GraphSpec, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
    """Each vertex joined to its successor along every dimension, wrapping around (row-major numbering)."""
    dims = spec.dims
    n = math.prod(dims)
    index = np.arange(n, dtype=np.int64).reshape(dims)
    rows, cols = [], []
    for axis in range(len(dims)):
        rows.append(index.ravel())
        cols.append(np.roll(index, -1, axis=axis).ravel())
    return n, *_ordered(np.concatenate(rows), np.concatenate(cols))


def _random(spec: GraphSpec, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
    """m distinct pairs drawn uniformly (G(n, m)): pairs drawn in batches, self loops dropped, each pair kept at
    its first draw, until m are in hand."""
    n = int(spec.options["n"])
    o = spec.options
    m = int(o["m"]) if "m" in o else round(n * float(o["degree"]) / 2)
    keys = np.empty(0, dtype=np.int64)
    while keys.size < m:
        draw = int(1.1 * (m - keys.size)) + 16
        pairs = rng.integers(0, n, size=(draw, 2))   # one stream of pairs, whatever the batches: see below
        i, j = pairs[:, 0], pairs[:, 1]
        keep = i != j
        i, j = _ordered(i[keep], j[keep])
        keys = np.concatenate([keys, i * n + j])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]   # in draw order: the first m distinct pairs of the stream, so that a
        # larger m (or degree) on the same seed extends the same graph
    keys = keys[:m]
    return n, keys // n, keys % n


def _planar(spec: GraphSpec, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
    """The Delaunay triangulation of n uniform points in the unit square (planar, about 3n edges), then a
    uniform choice of density percent of 3n - 6 edges (all of them when the triangulation has fewer)."""
    from scipy.spatial import Delaunay

    n = int(spec.options["n"])
    density = float(spec.options.get("density", "100"))
    triangles = Delaunay(rng.random((n, 2))).simplices.astype(np.int64)
    i = triangles.ravel()
    j = np.roll(triangles, -1, axis=1).ravel()
    i, j = _ordered(i, j)
    keys = np.unique(i * n + j)
    wanted = min(keys.size, round(density / 100 * (3 * n - 6)))
    if wanted < keys.size:
        keys = np.sort(rng.choice(keys, size=wanted, replace=False))
    return n, keys // n, keys % n


def _ordered(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)


def graph_source(path: str | None, graph: str | None) -> "Path | GraphSpec":
    """What problem.path and problem.graph name, exactly one of them: the existing file, or the checked spec."""
    from alm_bench.conic.readers.checks import existing_file

    if bool(path) == bool(graph):
        raise UserError("problem.path and problem.graph: set exactly one, a graph file (.mat, .mtx or rudy text) "
                        f"or a generator spec such as toroidal:316x316 (got path={path!r}, graph={graph!r})")
    return parse_spec(str(graph)) if graph else existing_file(path)


def load_graph(source: "Path | GraphSpec") -> GraphFile:
    """The graph of a file (read) or of a spec (generated), with how it came (the summary's read_as)."""
    from alm_bench.conic.readers import read_graph_file

    if isinstance(source, GraphSpec):
        return GraphFile(generate(source), f"generated from the spec {source.text} (alm_bench/conic/graphs.py)")
    return read_graph_file(source)
