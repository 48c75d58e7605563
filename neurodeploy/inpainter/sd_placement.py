r"""All on the chip: the inpainter's host CNN as sigma-delta layers, beside today's placement (issue 26).

``convert --chip all`` places every host conv the chip can run on the chip as
a :class:`~neurodeploy.chip.sigma_delta.SigmaDeltaLayer` (``--chip spiking``,
the default, keeps them on the host as before). What each layer becomes
(:func:`plan_layers`):

* a ReLU conv of stride 1 or 2: a sigma-delta ReLU layer (stock netx runs it);
* a dilated ReLU conv: the same with a dilated kernel, a transposed conv of
  stride 2: a conv of the zero-upsampled input (:func:`~neurodeploy.chip.sigma_delta.transposed_as_conv`),
  both on neurodeploy's own sigma-delta segment process (stock netx reads neither);
* the last conv with ``final_activation = "none"``: a linear sigma readout (no
  ReLU; our process); a sigmoid stays on the host, and so does every layer after
  a host layer (one chip -> host cut);
* the residual add of the fill and the composite stay on the host (they read the
  image and the hole, which the host holds).

The first sigma-delta layer reads the LIF stage's binary spikes, one Lava step
each: its synapse sums them (sigma = the spike count), so the float rate
``count / T`` is one payload unit worth ``input_step = 1 / T``, which
:func:`~neurodeploy.chip.sigma_delta.quantize_relu_layer` folds into its weights;
with binary payloads its weights would use only a few of their 8 bits of
state resolution, so it takes weight exponent :data:`FIRST_WEIGHT_EXP` (6,
measured in phase 1: 0.45 % activation error against 17-19 % with 0). That
layer runs on our process only.

Timing of one host block (:func:`run_sigma_delta`): the LIF stage's spikes of
step t go in at step t (t < T), zeros after; layer k emits what its input sent
up to step s - k, so T + n steps (n layers) carry everything. The host rebuilds
the readout as the sum of its payloads times its ``message_step`` (what a sigma
neuron on the host side holds), crops, adds the fill (``residual``) and composites.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurodeploy.bundle.manifest import Segment, SegmentInput, segment_file
from neurodeploy.chip.sigma_delta import (
    SigmaDeltaLayer,
    conv_output_shape,
    quantize_relu_layer,
    run_segment,
    run_segment_torch,
    transposed_as_conv,
    upsampled,
)
from neurodeploy.errors import UserError
from neurodeploy.inpainter.model import HybridInpainter, ModelConfig, conv_specs

Placement = Literal["spiking", "all"]
PLACEMENTS: tuple[str, ...] = ("spiking", "all")
FIRST_WEIGHT_EXP = 6  # the first sigma-delta layer, after binary LIF spikes (docs/bench_sigma_delta.json)
# The delta threshold as a fraction of each layer's calibrated activation scale (docs/BENCHMARKS.md,
# "The whole hybrid on the chip": the sweep of thresholds)
DEFAULT_DELTA_THRESHOLD = 1 / 256
SD_CALIBRATION_TILES = 16  # calibration windows cut from the builtin training photos (seeded)
SD_CALIBRATION_WINDOW = 64  # their side in pixels


@dataclass(frozen=True)
class LayerPlace:
    """Where one of the inpainter's layers runs under a placement, and why."""

    name: str  # lif0.. for the spiking stage, cnn1..cnn5 for the host CNN's convs, then the host ops
    what: str  # what the layer computes
    place: str  # "chip" or "host"
    runs_as: str  # CUBA, sigma-delta ReLU, linear sigma readout, PyTorch
    reason: str


def plan_layers(config: ModelConfig, placement: Placement = "spiking") -> list[LayerPlace]:
    """Every layer of the inpainter and where ``placement`` puts it (the module docstring's rules)."""
    if placement not in PLACEMENTS:
        raise UserError(f"unknown placement {placement!r}", "pass `chip='spiking'` (default) or `chip='all'`")
    out, on_chip = [], placement == "all"
    for spec in conv_specs(config):
        geometry = f"{spec.kernel}x{spec.kernel} conv {spec.in_channels}->{spec.out_channels}" if spec.stride != -2 \
            else f"4x4 transposed conv {spec.in_channels}->{spec.out_channels}, stride 2"
        if spec.stride == 2:
            geometry += ", stride 2"
        if spec.dilation > 1:
            geometry += f", dilation {spec.dilation}"
        if spec.index < config.spiking_layers:
            out.append(LayerPlace(f"lif{spec.index}", geometry + " + LIF", "chip", "CUBA",
                                  "a LIF conv: Loihi's CUBA neuron"))
            continue
        last = spec.index == 5
        act = config.final_activation if last else "relu"
        name, what = f"cnn{spec.index}", f"{geometry} + {act}"
        if placement == "spiking":
            out.append(LayerPlace(name, what, "host", "PyTorch", "default placement (--chip all moves it)"))
            continue
        if not on_chip:
            out.append(LayerPlace(name, what, "host", "PyTorch", "reads a host layer: one chip->host cut"))
            continue
        if act == "sigmoid":
            on_chip = False
            out.append(LayerPlace(name, what, "host", "PyTorch", "a sigmoid is no sigma-delta activation"))
            continue
        runs_as = "sigma-delta ReLU" if act == "relu" else "linear sigma readout"
        notes = []
        if spec.index == config.spiking_layers:
            notes.append(f"reads binary spikes: 1/T in its weights, weight exponent {FIRST_WEIGHT_EXP}")
        if spec.dilation > 1:
            notes.append("dilated kernel")
        if spec.stride == -2:
            notes.append("a conv of the zero-upsampled input")
        if act == "none":
            notes.append("no ReLU")
        stock = not notes
        notes.append("stock netx" if stock else "neurodeploy's SD process only")
        out.append(LayerPlace(name, what, "chip", runs_as, "; ".join(notes)))
    out.append(LayerPlace("residual", "fill + correction", "host", "PyTorch",
                          "adds the host's hole fill" if config.residual else "none: not a residual model"))
    out.append(LayerPlace("composite", "known pixels kept, the hole filled", "host", "PyTorch",
                          "needs the image and its mask"))
    return out


def chip_host_layers(config: ModelConfig, placement: Placement) -> int:
    """How many of the host CNN's layers (from its first) ``placement`` puts on the chip."""
    return sum(p.place == "chip" and p.name.startswith("cnn") for p in plan_layers(config, placement))


# -- calibration and quantization -----------------------------------------------------------------------

def _as_conv(module: nn.Module) -> dict[str, Any]:
    """A host conv as the sigma-delta layer's conv: weight (O, C, kh, kw), stride, padding, dilation, upsample."""
    w = module.weight.detach().double().numpy()
    if isinstance(module, nn.ConvTranspose2d):
        weight, padding = transposed_as_conv(w, int(module.padding[0]))
        return {"weight": weight, "stride": (1, 1), "padding": (padding, padding), "dilation": (1, 1), "upsample": 2}
    return {"weight": w, "stride": tuple(module.stride), "padding": tuple(module.padding),
            "dilation": tuple(module.dilation), "upsample": 1}


def _abs_sum(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``Σ_j |w_oj|·|x_j|`` of every output: the module on |x| with |w| and no bias (bounds its synapse's sums)."""
    if isinstance(module, nn.ConvTranspose2d):
        return F.conv_transpose2d(x.abs(), module.weight.abs(), None, module.stride, module.padding)
    return F.conv2d(x.abs(), module.weight.abs(), None, module.stride, module.padding, module.dilation)


def calibrate_host_layers(model: HybridInpainter, rates: torch.Tensor, layers: int
                          ) -> tuple[list[float], list[float]]:
    """The first ``layers`` host convs on calibration rates (N, C, h, w), float: per layer the activation
    scale (largest |output| after its activation) and the sum scale (largest ``Σ|w|·|x|``)."""
    act_scales, sum_scales = [], []
    x = rates
    with torch.no_grad():
        for block in list(model.cnn.layers)[:layers]:
            sum_scales.append(float(_abs_sum(block[0], x).max()))
            x = block(x)
            act_scales.append(float(x.abs().max()))
    return act_scales, sum_scales


def quantize_host_layers(model: HybridInpainter, act_scales: Sequence[float], sum_scales: Sequence[float],
                         delta_threshold: float, input_hw: tuple[int, int]) -> list[SigmaDeltaLayer]:
    """The first ``len(act_scales)`` host convs as sigma-delta layers on an input of ``input_hw`` pixels."""
    config = model.config
    blocks = list(model.cnn.layers)[:len(act_scales)]
    shape: tuple[int, ...] = (conv_specs(config)[config.spiking_layers].in_channels, *input_hw)
    step, scale = 1.0 / config.timesteps, 1.0  # binary spikes in: one payload unit is 1/T of the rate
    out: list[SigmaDeltaLayer] = []
    for k, (block, act_scale, sum_scale) in enumerate(zip(blocks, act_scales, sum_scales, strict=True)):
        activation = "relu" if isinstance(block[1], nn.ReLU) else "none"
        if not isinstance(block[1], (nn.ReLU, nn.Identity)):
            raise UserError(f"host layer {k + 1} ends in {type(block[1]).__name__}", "keep it on the host")
        conv = _as_conv(block[0])
        layer = quantize_relu_layer(
            conv["weight"], block[0].bias.detach().double().numpy(), kind="conv", input_shape=shape,
            input_step=step, input_scale=scale, act_scale=act_scale, delta_threshold=delta_threshold,
            stride=conv["stride"], padding=conv["padding"], weight_exp=FIRST_WEIGHT_EXP if k == 0 else 0,
            sum_scale=sum_scale, activation=activation, dilation=conv["dilation"], upsample=conv["upsample"])
        out.append(layer)
        shape, step, scale = layer.output_shape, layer.message_step, act_scale
    return out


def reshaped(layers: Sequence[SigmaDeltaLayer], input_hw: tuple[int, int]) -> list[SigmaDeltaLayer]:
    """The same layers on an input of ``input_hw`` pixels (a host block's window)."""
    out: list[SigmaDeltaLayer] = []
    shape: tuple[int, ...] = (layers[0].input_shape[0], *input_hw)
    for layer in layers:
        new = conv_output_shape(shape, layer.weight.shape, layer.stride, layer.padding, layer.dilation,
                                layer.upsample)
        out.append(dataclasses.replace(layer, input_shape=shape, output_shape=new))
        shape = new
    return out


# -- running a host block ------------------------------------------------------------------------------

@dataclass
class SigmaDeltaTally:
    """One sigma-delta layer's traffic and fidelity over an image, summed over the pixels host blocks own.

    Per Lava step s of the segment (T + n steps): ``messages`` the graded messages it sent (a changed
    activation sends one, an unchanged one none), ``input_events`` those it received, ``synops`` the
    synaptic operations they made (each input message times the outputs its weights reach).
    """

    name: str
    messages: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    input_events: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    synops: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    neurons: int = 0  # output neurons of the owned pixels, summed over blocks
    error_sq: float = 0.0  # ||rebuilt activation - float activation||^2 (float layer on the chip's rates)
    reference_sq: float = 0.0  # ||float activation||^2

    def add(self, messages: np.ndarray, input_events: np.ndarray, synops: np.ndarray, neurons: int) -> None:
        if not len(self.messages):
            self.messages, self.input_events, self.synops = (np.zeros(len(messages), np.int64) for _ in range(3))
        self.messages += messages
        self.input_events += input_events
        self.synops += synops
        self.neurons += neurons

    def scores(self) -> dict[str, Any]:
        slots = self.neurons * len(self.messages)
        return {"name": self.name, "messages": int(self.messages.sum()),
                "fraction_sent": int(self.messages.sum()) / slots if slots else None,
                "relative_activation_error": (self.error_sq / self.reference_sq) ** 0.5 if self.reference_sq else None}


def run_sigma_delta(layers: Sequence[SigmaDeltaLayer], spikes: np.ndarray, backend: str,
                    device: str = "cpu") -> list[np.ndarray]:
    """Spikes (T, C, h, w) of the LIF stage -> every layer's payloads (T + n, *output_shape), int64,
    on ``backend``: reference (NumPy), torch, or lava (neurodeploy's segment process)."""
    steps = spikes.shape[0] + len(layers)
    payloads = np.zeros((steps, *spikes.shape[1:]), np.int64)
    payloads[:spikes.shape[0]] = spikes
    if backend == "torch":
        return [o[:, 0].cpu().numpy() for o in run_segment_torch(layers, torch.from_numpy(payloads[:, None])
                                                                  .to(device))]
    if backend == "lava":
        # imported here: it starts Lava, which the reference and torch backends never need
        from neurodeploy.runtime.lava.sigma_delta_run import run_segment_process

        return run_segment_process(layers, payloads)
    if backend != "reference":
        raise UserError(f"the sigma-delta layers run on reference, torch or lava, not {backend!r}",
                        "pass --backend reference, torch or lava")
    return [o[:, 0] for o in run_segment(layers, payloads[:, None])]


def fan_in_events(layer: SigmaDeltaLayer, m_in: np.ndarray) -> torch.Tensor:
    """Per step and output pixel, how many input messages its weights read: (steps, Ho, Wo); times the
    output channels, the synaptic operations those messages make there."""
    nz = upsampled(torch.from_numpy(np.count_nonzero(m_in, axis=1).astype(np.float64))[:, None], layer.upsample)
    ones = torch.ones((1, 1, *layer.weight.shape[2:]), dtype=nz.dtype)
    return F.conv2d(nz, ones, stride=layer.stride, padding=layer.padding, dilation=layer.dilation)[:, 0]


def _owned(x: Any, owned: tuple[slice, slice], of: int, at: int) -> Any:
    """The owned region (given on a grid of side ``of``) of ``x`` (..., at, at'), scaled to its grid of side ``at``."""
    rows, cols = owned
    f = at / of
    return x[..., round(rows.start * f):round(rows.stop * f), round(cols.start * f):round(cols.stop * f)]


def sigma_delta_block(layers: Sequence[SigmaDeltaLayer], spikes: np.ndarray, backend: str,
                      tallies: Sequence[SigmaDeltaTally] = (), float_layers: Sequence[nn.Module] = (),
                      device: str = "cpu", owned: tuple[slice, slice] | None = None) -> torch.Tensor:
    """One host block: spikes (T, C, h, w) -> the last layer's activation rebuilt in float (1, O, h', w').

    ``h, w`` are padded at the bottom and right to the CNN's size multiple by the caller, as HostCNN does.
    With ``tallies`` (one per layer), each layer's messages, input events and synaptic operations in the
    ``owned`` pixels of the block (rows, columns of the spike grid; default all) are added, and with
    ``float_layers`` (the float host blocks) its rebuilt activation there is compared with the float
    layer run on the chip's rates.
    """
    sized = reshaped(layers, spikes.shape[-2:])
    outs = run_sigma_delta(sized, spikes, backend, device)
    rebuilt = [o.sum(axis=0) * layer.message_step for o, layer in zip(outs, sized, strict=True)]
    side = spikes.shape[-2]
    owned = owned or (slice(0, side), slice(0, spikes.shape[-1]))
    if tallies:
        x = torch.from_numpy(spikes.astype(np.float32)).mean(dim=0, keepdim=True)
        m_in = np.concatenate([spikes, np.zeros((len(layers), *spikes.shape[1:]), spikes.dtype)])
        for k, (tally, out, layer) in enumerate(zip(tallies, outs, sized, strict=True)):
            mine = _owned(out, owned, side, out.shape[-2])
            tally.add(np.count_nonzero(mine.reshape(len(mine), -1), axis=1),
                      np.count_nonzero(_owned(m_in, owned, side, m_in.shape[-2]).reshape(len(m_in), -1), axis=1),
                      _owned(fan_in_events(layer, m_in), owned, side, out.shape[-2]).sum(dim=(1, 2)).numpy()
                      .astype(np.int64) * layer.output_shape[0], mine[0].size)
            m_in = out
            if k < len(float_layers):
                with torch.no_grad():
                    x = float_layers[k](x)
                ref = _owned(x[0].double().numpy(), owned, side, out.shape[-2])
                tally.error_sq += float(((_owned(rebuilt[k], owned, side, out.shape[-2]) - ref) ** 2).sum())
                tally.reference_sq += float((ref ** 2).sum())
    return torch.from_numpy(rebuilt[-1]).float()[None]


def sigma_delta_host(layers: Sequence[SigmaDeltaLayer], cnn: nn.Module, spikes: np.ndarray, snn_input: torch.Tensor,
                     backend: str, tallies: Sequence[SigmaDeltaTally] = (), compare: bool = False,
                     device: str = "cpu", owned: tuple[slice, slice] | None = None) -> torch.Tensor:
    """A host block under placement "all": the LIF stage's spikes (T, C, h, w) through the sigma-delta
    layers (padded at the bottom and right to the CNN's multiple and cropped, as HostCNN does), the host
    layers left after them, then the residual add of the fill: the prediction (1, 3, H, W).

    ``cnn``: the float HostCNN (its layers after the chip's run on the host; with ``compare``, its
    layers on the chip's rates are what each sigma-delta layer is compared with)."""
    h, w = spikes.shape[-2:]
    m = cnn.multiple
    padded = np.pad(spikes, ((0, 0), (0, 0), (0, (-h) % m), (0, (-w) % m)))
    blocks = list(cnn.layers)
    x = sigma_delta_block(layers, padded, backend, tallies, blocks if compare else (), device, owned)
    with torch.no_grad():
        for block in blocks[len(layers):]:
            x = block(x)
    x = x[..., :snn_input.shape[-2], :snn_input.shape[-1]]
    return x + snn_input[:, :cnn.image_channels] if cnn.residual else x


# -- the bundle's sigma-delta segment ------------------------------------------------------------------

SD_HOST_BLOCK = 128  # the host blocks the sigma-delta layers run on (the NumPy conv's memory grows with them)


def calibration_rates(model: HybridInpainter, frames: np.ndarray) -> torch.Tensor:
    """The float spiking stage's rates (N, C, h, w) on calibration frames (N, T, C, H, W) of the chip's input
    (8-bit payloads for ``constant`` encoding, spikes for ``poisson``)."""
    assert model.snn is not None
    with torch.no_grad():
        if model.config.encoding == "constant":
            spikes = model.snn(torch.from_numpy(frames[:, 0].astype(np.float32)) / 255.0)
        else:
            spikes = model.snn(torch.from_numpy(frames.astype(np.float32)).transpose(0, 1))
    return spikes.mean(dim=0)


def segment_entry(layers: Sequence[SigmaDeltaLayer], places: Sequence[LayerPlace], act_scales: Sequence[float],
                  sum_scales: Sequence[float], delta_threshold: float, block: int, timesteps: int,
                  index: int, source: str) -> Segment:
    """The manifest's entry of the sigma-delta segment (at ``index`` of the partition): what its netx file
    does not hold (float steps, scales), the threshold, the block it runs on, whether stock netx loads it."""
    stock = all(layer.stock_netx for layer in layers)
    return Segment(
        index=index, place="chip", nodes=tuple(p.name for p in places), file=segment_file(index),
        neurons="sigma_delta",
        input=SegmentInput(source, "spikes", 1, 0, "the LIF stage's spikes of step t go in at step t"),
        details={"stock_netx": stock,
                 "runs_on": "stock netx or neurodeploy's SigmaDeltaSegment" if stock else
                            "neurodeploy's SigmaDeltaSegment only (a layer stock netx does not run: see layers)",
                 "delta_threshold": delta_threshold, "block": block},
        lava={"steps_per_block": timesteps + len(layers), "depth": len(layers)},
        layers=tuple({"name": p.name, "runs_as": p.runs_as, "reason": p.reason, "kind": layer.kind,
                      "input_shape": list(layer.input_shape), "output_shape": list(layer.output_shape),
                      "stride": list(layer.stride), "padding": list(layer.padding), "dilation": list(layer.dilation),
                      "upsample": layer.upsample, "activation": layer.activation, "weight_exp": layer.weight_exp,
                      "vth": layer.vth, "message_step": layer.message_step, "input_step": layer.input_step,
                      "act_scale": act, "sum_scale": total, "stock_netx": layer.stock_netx}
                     for p, layer, act, total in zip(places, layers, act_scales, sum_scales, strict=True)),
    )

