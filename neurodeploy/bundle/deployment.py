"""A format-2 bundle read into what the runtime runs: its chip parts (netx files read back) and host parts.

:meth:`GraphDeployment.from_bundle` re-plans the bundle's ``graph.nir`` and
cross-checks it against the manifest's segments, so a bundle whose files do not
fit its manifest is refused when loaded, in one line. It lives in the bundle
layer (not the runtime) so that :class:`~neurodeploy.bundle.format.Bundle`
can check it on load without importing the runtime; the runtime takes it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from neurodeploy.bundle.manifest import GRAPH_FILE, HOST_FILE
from neurodeploy.chip.partition import ChipSegment, partition
from neurodeploy.converters.netx_in import read_segment
from neurodeploy.converters.netx_io import FixedPointLayer
from neurodeploy.errors import UserError
from neurodeploy.io import load_torch
from neurodeploy.ir.graph import Graph
from neurodeploy.ir.host_ops import host_ops, with_host_ops
from neurodeploy.ir.nir_reader import read_graph


@dataclass(frozen=True)
class ChipPart:
    """A chip segment of the bundle: its netx file read back, the node it reads, and its input payload."""

    index: int
    path: Path
    layers: tuple[FixedPointLayer, ...]
    names: tuple[str, ...]  # the chip layers' (neuron) node names
    nodes: tuple[tuple[str, ...], ...]  # per chip layer, the graph nodes it computes (input side first)
    source: str
    payload: str  # "spikes" or "graded"
    payload_max: int
    input_message_bits: int


@dataclass(frozen=True)
class HostPart:
    """A host segment: graph nodes run in torch, in this order."""

    index: int
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class GraphDeployment:
    """A verified format-2 bundle, read into what the runtime needs."""

    graph: Graph  # graph.nir, the host nodes' operations from host.pt
    float_graph: Graph  # graph.nir as read: the float reference
    parts: tuple[ChipPart | HostPart, ...]
    input_node: str
    input_shape: tuple[int, ...]
    input_payload: str
    output_node: str
    output_shape: tuple[int, ...]

    @property
    def chip_layers(self) -> tuple[str, ...]:
        return tuple(n for p in self.parts if isinstance(p, ChipPart) for n in p.names)

    @classmethod
    def from_bundle(cls, bundle: Any) -> GraphDeployment:
        """Read graph.nir, host.pt and every segment file; cross-check them against the manifest."""
        try:
            return cls._read(bundle)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise UserError(f"bundle {bundle.path}: its manifest does not describe its files "
                            f"({type(exc).__name__}: {exc})", "re-create the bundle with neurodeploy convert") from None

    @classmethod
    def _read(cls, bundle: Any) -> GraphDeployment:
        m, fix = bundle.typed_manifest, "re-create the bundle with neurodeploy convert"
        float_graph = read_graph(bundle.file(GRAPH_FILE), dt=m.dt, tau_convention=m.tau_convention)
        float_graph = replace(float_graph, tau_convention_reason=m.tau_convention_reason or "given")  # convert's
        try:
            replanned = partition(float_graph, host=list(m.host_requested))
        except UserError as exc:
            raise UserError(f"bundle {bundle.path}: its graph does not partition as when converted ({exc})",
                            fix) from None
        planned = [("chip" if isinstance(s, ChipSegment) else "host", list(s.nodes)) for s in replanned.segments]
        if planned != [(s.place, list(s.nodes)) for s in m.segments]:
            raise UserError(f"bundle {bundle.path}: the manifest's segments are not the partition of its "
                            f"{GRAPH_FILE}", fix)
        host_file = bundle.file(HOST_FILE)
        graph = with_host_ops(float_graph, host_ops(load_torch(host_file, what="host file"), str(host_file)),
                              str(host_file))
        parts: list[ChipPart | HostPart] = []
        for k, (segment, entry) in enumerate(zip(replanned.segments, m.segments, strict=True)):
            if not isinstance(segment, ChipSegment):
                parts.append(HostPart(k, tuple(segment.nodes)))
                continue
            path = bundle.file(str(entry.file))
            layers = read_segment(path)
            if [layer.kind for layer in layers] != [e.get("kind") for e in entry.layers]:
                raise UserError(f"bundle {bundle.path}: {entry.file} does not hold the layers its manifest "
                                "lists", fix)
            spec = entry.input
            assert spec is not None  # validate_segments: every chip segment names its input
            parts.append(ChipPart(k, path, layers, tuple(layer.name for layer in segment.layers),
                                  tuple(tuple(layer.nodes) for layer in segment.layers), spec.node,
                                  spec.payload, spec.payload_max, spec.input_message_bits))
        assert m.output is not None and m.input.shape is not None and m.output.shape is not None  # format 2
        return cls(graph=graph, float_graph=float_graph, parts=tuple(parts), input_node=str(m.input.node),
                   input_shape=m.input.shape, input_payload=str(m.input.payload),
                   output_node=str(m.output.node), output_shape=m.output.shape)
