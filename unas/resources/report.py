"""Per-operator memory report of a resource graph under its optimal and its default order."""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from unas.resources.memory import order_profile
from unas.resources.schedule import min_peak_schedule
from unas.resources.totals import graph_macs, graph_params, graph_size_bytes


@dataclass(frozen=True)
class ResourceReport:
    """Rows (in the optimal order) and totals; ``default_peak`` is the insertion order's peak."""

    rows: tuple[tuple[str, str, tuple[int, ...], int, int, int], ...]  # name, op, shape, bytes, macs, live
    peak_bytes: int
    default_peak_bytes: int
    size_bytes: int
    macs: int
    params: int

    @property
    def saving_bytes(self) -> int:
        """How much less memory the optimal order needs than the default one."""
        return self.default_peak_bytes - self.peak_bytes

    def format(self) -> str:
        """A plain-text table followed by the totals."""
        header = ("operator", "op", "output shape", "bytes", "MACs", "live bytes")
        lines = [header] + [(name, op, "x".join(map(str, shape)), str(size), str(macs), str(live))
                            for name, op, shape, size, macs, live in self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w)
                          for i, (cell, w) in enumerate(zip(line, widths))) for line in lines]
        text.insert(1, "  ".join("-" * w for w in widths))
        percent = 100.0 * self.saving_bytes / self.default_peak_bytes if self.default_peak_bytes else 0
        text += [
            "",
            f"peak memory (optimal order): {self.peak_bytes} bytes",
            f"peak memory (default order): {self.default_peak_bytes} bytes "
            f"(optimal saves {self.saving_bytes} bytes, {percent:.1f}%)",
            f"model size: {self.size_bytes} bytes",
            f"MACs: {self.macs}",
            f"parameters: {self.params}",
        ]
        return "\n".join(text)


def resource_report(graph: nx.DiGraph) -> ResourceReport:
    """Report ``graph`` (default order = the graph's node insertion order, which must be topological)."""
    schedule = min_peak_schedule(graph)
    live = order_profile(graph, schedule.order)
    rows = tuple((str(n), graph.nodes[n]["op"], tuple(graph.nodes[n]["shape"]),
                  int(graph.nodes[n]["bytes"]), int(graph.nodes[n].get("macs", 0)), step)
                 for n, step in zip(schedule.order, live))
    return ResourceReport(rows, schedule.peak_bytes, max(order_profile(graph, list(graph)), default=0),
                          graph_size_bytes(graph), graph_macs(graph), graph_params(graph))
