"""The paper's hybrid spiking-convolutional inpainting network (SC-NN), in Norse.

Sanaullah, Roy, Rückert, Jungeblut (NLDL 2024) inpaint images with one
``SNNConv2d`` layer (a convolution feeding leaky integrate-and-fire neurons)
followed by five ordinary ``Conv2d`` layers, ReLU after each layer, trained
with MSE and Adam. ``HybridInpainter`` is that network:
    masked image (+ mask) --encode--> SNNConv2d (Conv2d -> Norse LIFCell, T steps)
        --spikes (T, B, C, H, W)--> rate = mean over T --> 5 x [Conv2d -> ReLU]

The spiking stage is what ``neurodeploy convert`` moves to Lava / Loihi 2; its
output reaches the host CNN as a spike-count rate, computed by
:func:`neurodeploy.chip.encoding.spike_rate`, the same function the bridge uses.

Choices the paper leaves open, made here:

* Input: the masked RGB image (missing pixels set to 0) plus, by default, the
  mask as a fourth channel (1 = missing), all in [0, 1] with 8-bit steps.
* Encoding: constant current (the image drives the conv every step; default)
  or Poisson/rate spikes (Bernoulli(pixel) per step, seeded).
* The spiking conv has no bias: Loihi adds a neuron's bias to its voltage, not
  to its synaptic current as Norse does, so a bias could not be mapped exactly.
* LIF: Norse's ``LIFCell`` with ``v_leak = v_reset = 0`` (Loihi's CUBA neuron
  leaks to 0 and resets to 0). The paper's neuron, dV/dt = (I - V/R)/C, has no
  synaptic filter, so by default ``tau_syn_inv·dt = 1``: the current is the
  conv output of the same step. This also keeps Loihi's 24-bit current
  register three bits further from overflow than a 5-step synapse would,
  which buys those bits for the 8-bit weights (see :mod:`neurodeploy.chip.quantize`).
  ``tau_mem_inv·dt = 0.25`` lets the membrane reach 90% of its drive in 8 steps.
* Host CNN: still five conv layers with ReLU, but as an encoder-decoder:
  two stride-2 convs, a dilated conv at quarter resolution, two stride-2
  transposed convs (``cnn_strides=(2, 2, 1, -2, -2)``). It sees a window of
  about 60 pixels at a tenth of the cost of the full-resolution stack; the
  paper's plain 3x3 stack sees 13 pixels, too little to fill holes wider
  than a few pixels. ``cnn_strides=(1,)*5, cnn_dilations=(1,)*5`` is the
  paper's literal stack.
* Hole fill: missing pixels are 0 for the spiking stage (``hole_fill="zero"``,
  the default), and the host CNN predicts the whole image; ReLU after every
  layer, the last included, as in the paper; outputs are clamped to [0, 1]
  when turned into an image. Trained on 128-px crops, this network paints
  the middle of a hole wider than its ~60-pixel view as a flat mean colour:
  on whole photos with holes of 10-30% it scored 1.4 dB below OpenCV's Telea
  on the hole, 3.0 dB on the worst photo (docs/BENCHMARKS.md section 2b).
* The shipped checkpoint (``examples/configs/full_resolution_residual.json``,
  :data:`SHIPPED_CONFIG`): ``hole_fill="smooth"`` fills the hole on the host
  with a harmonic interpolation (:func:`smooth_fill`, coarse to fine over
  the whole image, so it reaches every hole pixel of any size); the six
  layers run at full resolution (``cnn_strides=(1,)*5``,
  ``cnn_dilations=(1, 1, 2, 4, 1)``: a receptive field of 21 pixels), and
  with ``residual=True`` and ``final_activation="none"`` the CNN adds a
  signed correction to the fill. What is around the paper's network, then,
  and why: the harmonic fill before the spiking stage (it reaches the
  middle of any hole), the residual add after the last conv (the network
  need only learn what the fill gets wrong), and the training recipe
  (``train``'s defaults: each crop's hole MSE, Adam at 5e-4 decaying on a
  cosine; at 2e-3 the fourth layer's ReLUs die and the correction is a
  constant); the six layers are the paper's. Measured (docs/BENCHMARKS.md
  section 23): trained 6,016 steps on 64-px crops, it adds +0.35 dB to the
  fill's hole PSNR on 128-px crops, deployed (19.94 against 19.59 dB, above
  Telea, Navier-Stokes and biharmonic), and +0.06 dB on whole photos, where
  most of a large hole lies beyond its 21-pixel reach. The model shipped
  before it (``examples/configs/smooth_residual.json``: the encoder-decoder
  above with the fill) learned to add 0.00 dB.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from norse.torch import LIFCell, LIFParameters
from torch import nn

from neurodeploy.chip.encoding import Encoding, encode_input, spike_rate
from neurodeploy.inpainter.holes import HoleFill, network_input

FinalActivation = Literal["relu", "sigmoid", "none"]
MAX_SIZE = 4096  # channels and time steps: a checkpoint from a stranger cannot ask for more


@dataclass(frozen=True)
class LIFConfig:
    """Parameters of Norse's LIF neuron (``v_leak = v_reset = 0``, see the module docstring)."""

    tau_syn_inv: float = 1000.0
    tau_mem_inv: float = 250.0
    v_th: float = 1.0
    dt: float = 1e-3
    # SuperSpike's surrogate 1 / (alpha |v - v_th| + 1)^2: Norse's default alpha = 100 is so
    # narrow that neurons far below threshold get no gradient and stay silent for good.
    surrogate_alpha: float = 10.0

    def __post_init__(self) -> None:
        for name in ("tau_syn_inv", "tau_mem_inv", "v_th", "dt", "surrogate_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"LIFConfig.{name} must be a finite number, got {value!r}")
            if not value > 0:
                raise ValueError(f"LIFConfig.{name} must be positive, got {getattr(self, name)}")
        for name, decay in (("tau_syn_inv", self.tau_syn_inv), ("tau_mem_inv", self.tau_mem_inv)):
            if decay * self.dt > 1:
                raise ValueError(f"LIFConfig.{name} * dt must be at most 1 (forward Euler), "
                                 f"got {decay * self.dt}")

    def norse_parameters(self) -> LIFParameters:
        return LIFParameters(
            tau_syn_inv=torch.as_tensor(self.tau_syn_inv),
            tau_mem_inv=torch.as_tensor(self.tau_mem_inv),
            v_leak=torch.as_tensor(0.0),
            v_th=torch.as_tensor(self.v_th),
            v_reset=torch.as_tensor(0.0),
            method="super",
            alpha=torch.as_tensor(self.surrogate_alpha),
        )


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a ``HybridInpainter``; round-trips through JSON."""

    image_channels: int = 3
    mask_input: bool = True
    snn_channels: int = 32
    snn_kernel: int = 3
    cnn_channels: tuple[int, ...] = (64, 64, 64, 32)
    cnn_kernel: int = 3
    cnn_dilations: tuple[int, ...] = (1, 1, 2, 1, 1)
    cnn_strides: tuple[int, ...] = (2, 2, 1, -2, -2)
    timesteps: int = 8
    encoding: Encoding = "constant"
    hole_fill: HoleFill = "zero"
    residual: bool = False  # True: the CNN's output is a correction added to the filled image
    final_activation: FinalActivation = "relu"
    lif: LIFConfig = field(default_factory=LIFConfig)
    # How many of the six conv layers, from the first, are LIF convolutions on the chip: 1 is the
    # paper's network, 0 its all-CNN twin (ReLU in place of the LIF stage), 2 or more turn the
    # first host convolutions into LIF convolutions (each must be a plain conv: stride 1 or 2, no
    # dilation, as a chip layer is; see conv_specs).
    spiking_layers: int = 1

    def __post_init__(self) -> None:
        for name in ("cnn_channels", "cnn_dilations", "cnn_strides"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
                raise ValueError(f"{name} must be a list of integers, got {value!r}")
            object.__setattr__(self, name, tuple(int(v) for v in value))
        for name in ("image_channels", "snn_channels", "snn_kernel", "cnn_kernel", "timesteps", "spiking_layers"):
            if not _is_int(getattr(self, name)):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("mask_input", "residual"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if isinstance(self.lif, dict):
            try:
                object.__setattr__(self, "lif", LIFConfig(**self.lif))
            except TypeError as exc:
                raise ValueError(f"lif: {exc}") from None
        if not isinstance(self.lif, LIFConfig):
            raise ValueError(f"lif must be a table of LIF parameters, got {self.lif!r}")
        if len(self.cnn_channels) != 4:
            raise ValueError("cnn_channels must list the 4 hidden widths of the 5 conv layers")
        if len(self.cnn_dilations) != 5:
            raise ValueError("cnn_dilations must list one dilation for each of the 5 conv layers")
        for name in ("image_channels", "snn_channels", "timesteps"):
            if not 1 <= getattr(self, name) <= MAX_SIZE:
                raise ValueError(f"{name} must lie in [1, {MAX_SIZE}]")
        if any(c > MAX_SIZE for c in self.cnn_channels) or any(d > 64 for d in self.cnn_dilations):
            raise ValueError(f"cnn_channels must be at most {MAX_SIZE} and dilations at most 64")
        if max(self.snn_kernel, self.cnn_kernel) > 15:
            raise ValueError("kernels must be at most 15 x 15")
        if any(c < 1 for c in self.cnn_channels) or any(d < 1 for d in self.cnn_dilations):
            raise ValueError("cnn_channels and cnn_dilations must be positive")
        if len(self.cnn_strides) != 5 or any(st not in (1, 2, -2) for st in self.cnn_strides):
            raise ValueError("cnn_strides must give each of the 5 conv layers 1, 2 (down) or -2 (up)")
        if self.cnn_strides.count(2) != self.cnn_strides.count(-2):
            raise ValueError("cnn_strides must upsample (-2) as often as they downsample (2)")
        for name in ("snn_kernel", "cnn_kernel"):
            if getattr(self, name) < 1 or getattr(self, name) % 2 == 0:
                raise ValueError(f"{name} must be odd and positive (same-size convolutions)")
        if self.encoding not in ("constant", "poisson"):
            raise ValueError(f"encoding must be 'constant' or 'poisson', got {self.encoding!r}")
        if self.hole_fill not in ("zero", "mean", "smooth"):
            raise ValueError(f"hole_fill must be 'zero', 'mean' or 'smooth', got {self.hole_fill!r}")
        if self.final_activation not in ("relu", "sigmoid", "none"):
            raise ValueError(f"final_activation must be relu, sigmoid or none, got {self.final_activation!r}")
        if not 0 <= self.spiking_layers <= 5:
            raise ValueError(f"spiking_layers must lie in [0, 5] (the last conv layer makes the image), "
                             f"got {self.spiking_layers}")
        for spec in conv_specs(self)[1:self.spiking_layers]:
            if spec.stride not in (1, 2) or spec.dilation != 1:
                raise ValueError(f"conv layer {spec.index} cannot be a LIF convolution (stride {spec.stride}, "
                                 f"dilation {spec.dilation}): a chip layer is a plain conv of stride 1 or 2; "
                                 f"lower spiking_layers to {spec.index} or change cnn_strides / cnn_dilations")

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (the CNN's total downsampling); others are padded."""
        return 2 ** self.cnn_strides.count(2)

    @property
    def snn_in_channels(self) -> int:
        return self.image_channels + int(self.mask_input)

    @property
    def spiking_stride(self) -> int:
        """How much the spiking stage downsamples: the product of its layers' strides."""
        return math.prod(spec.stride for spec in conv_specs(self)[:self.spiking_layers])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class ConvSpec:
    """One of the network's six conv layers: layer 0 reads the network input, layer 5 makes the image.

    ``stride`` 2 halves the image (3x3 conv, stride 2); -2 doubles it (4x4
    transposed conv, stride 2); 1 keeps its size.
    """

    index: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    dilation: int


def conv_specs(config: ModelConfig) -> list[ConvSpec]:
    """The six conv layers in order: the spiking conv's geometry, then the five host convs'."""
    widths = (config.snn_in_channels, config.snn_channels, *config.cnn_channels, config.image_channels)
    kernels = (config.snn_kernel, *[config.cnn_kernel] * 5)
    strides, dilations = (1, *config.cnn_strides), (1, *config.cnn_dilations)
    return [ConvSpec(i, widths[i], widths[i + 1], kernels[i], strides[i], dilations[i]) for i in range(6)]


# PyTorch's default conv init gives currents far below a threshold of 1 for inputs in
# [0, 1]: at init 31 of 32 channels never fire on the validation photos, and silent
# neurons get almost no surrogate gradient. Eight times larger weights leave 1 of 32
# silent and a 7% firing rate.
SNN_INIT_GAIN = 8.0


class SNNConv2d(nn.Module):
    """Conv2d (no bias) feeding Norse LIF neurons: one chip layer of the spiking stage.

    ``step`` advances it one time step; :class:`SpikingStack` unrolls the
    stack of them over T steps.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, lif: LIFConfig,
                 stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                              bias=False)
        with torch.no_grad():  # start where the neurons fire (see SNN_INIT_GAIN)
            self.conv.weight.mul_(SNN_INIT_GAIN * lif.v_th)
        self.lif_config = lif
        self.lif = LIFCell(p=lif.norse_parameters(), dt=lif.dt)

    def step(self, current: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return self.lif(current, state)


class SpikingStack(nn.Module):
    """The spiking stage: a list of :class:`SNNConv2d` layers, each reading the previous one's spikes.

    ``forward`` takes the input already encoded as currents or spikes, shape
    (T, B, C, H, W), or (B, C, H, W) for a constant current, and returns the
    last layer's spikes (T, B, C_out, H', W'); ``every_layer=True`` returns
    every layer's, a list. Within a time step the layers run in order (layer
    k reads layer k-1's spikes of the same step), as the float graph does;
    the deployed chip's one-step delay per layer is removed by the runtime.
    """

    def __init__(self, specs: list[ConvSpec], timesteps: int, lif: LIFConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(SNNConv2d(s.in_channels, s.out_channels, s.kernel, lif, s.stride)
                                    for s in specs)
        self.timesteps = timesteps
        self.lif_config = lif

    @property
    def stride(self) -> int:
        return math.prod(layer.conv.stride[0] for layer in self.layers)

    def forward(self, x: torch.Tensor, every_layer: bool = False) -> Any:
        constant = x.dim() == 4
        first = self.layers[0].conv(x) if constant else None
        states: list[Any] = [None] * len(self.layers)
        spikes: list[list[torch.Tensor]] = [[] for _ in self.layers]
        for t in range(self.timesteps):
            z = first if constant else self.layers[0].conv(x[t])
            for k, layer in enumerate(self.layers):
                if k:
                    z = layer.conv(z)
                z, states[k] = layer.step(z, states[k])
                spikes[k].append(z)
        out = [torch.stack(s) for s in spikes]
        return out if every_layer else out[-1]


class CNNConv2d(nn.Sequential):
    """Conv2d followed by an activation (ReLU unless told otherwise).

    ``stride`` 2 halves the image (3x3 conv, stride 2); -2 doubles it
    (4x4 transposed conv, stride 2); 1 keeps its size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 activation: FinalActivation = "relu", stride: int = 1) -> None:
        act: nn.Module = {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[activation]
        conv: nn.Module
        if stride == -2:
            conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        else:
            conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                             padding=dilation * (kernel_size // 2), dilation=dilation)
        super().__init__(conv, act)


RESIDUAL_INIT_GAIN = 0.1


class HostCNN(nn.Module):
    """The five conventional conv layers that run on the host, spike rates in, image out.

    With ``config.residual`` the output is a correction added to the filled
    image the spiking stage saw (the first channels of its input); the last
    layer starts at a tenth of its usual scale with zero bias, so an untrained
    network returns the fill plus a small correction. (Starting at exactly
    zero, or at full scale, ends at the same correction after 400 steps:
    docs/BENCHMARKS.md section 23.)
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        specs = conv_specs(config)[config.spiking_layers:]
        layers = []
        for spec in specs:
            last = spec.index == 5
            layers.append(CNNConv2d(spec.in_channels, spec.out_channels, spec.kernel, spec.dilation,
                                    config.final_activation if last else "relu", spec.stride))
        self.layers = nn.Sequential(*layers)
        # the host's own downsampling: the rate it reads is the image downsampled by the spiking stage
        self.multiple = 2 ** sum(spec.stride == 2 for spec in specs)
        self.residual = config.residual
        self.image_channels = config.image_channels
        if self.residual:
            last_conv = self.layers[-1][0]
            with torch.no_grad():
                last_conv.weight.mul_(RESIDUAL_INIT_GAIN)
                last_conv.bias.zero_()

    def forward(self, rate: torch.Tensor, snn_input: torch.Tensor) -> torch.Tensor:
        """Rates (B, C_snn, h, w) and the spiking stage's input (B, C_in, H, W) -> image (B, 3, H, W).

        ``rate`` is the image downsampled by the spiking stage (h = H for one
        spiking layer); for the all-CNN twin it is the spiking stage's input itself.
        """
        h, w = rate.shape[-2:]
        pad_h, pad_w = (-h) % self.multiple, (-w) % self.multiple
        if pad_h or pad_w:  # sides not divisible by the downsampling: pad, run, crop
            rate = F.pad(rate, (0, pad_w, 0, pad_h))
        out = self.layers(rate)[..., :snn_input.shape[-2], :snn_input.shape[-1]]
        return out + snn_input[:, :self.image_channels] if self.residual else out


class HybridInpainter(nn.Module):
    """The first ``spiking_layers`` of six conv layers as LIF convs, the rest on the host (module docstring).

    ``snn`` is the :class:`SpikingStack` (None for the all-CNN twin,
    ``spiking_layers = 0``), ``cnn`` the :class:`HostCNN`.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        specs = conv_specs(c)[:c.spiking_layers]
        self.snn = SpikingStack(specs, c.timesteps, c.lif) if specs else None
        self.cnn = HostCNN(c)

    def network_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) image in [0,1] and (B,1,H,W) mask (1 = missing) -> SNN input (B,C,H,W)."""
        return network_input(image, mask, self.config.mask_input, self.config.hole_fill)

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The SNN input as the chip receives it (see :func:`neurodeploy.chip.encoding.encode_input`)."""
        return encode_input(x, self.config.encoding, self.config.timesteps, generator)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` zero-padded at the bottom and right to a multiple of the spiking stage's stride."""
        stride = self.config.spiking_stride
        return F.pad(x, (0, (-x.shape[-1]) % stride, 0, (-x.shape[-2]) % stride)) if stride > 1 else x

    def spikes(self, image: torch.Tensor, mask: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Output spikes of the spiking stage's last layer, (T, B, C, H', W')."""
        if self.snn is None:
            raise ValueError("the all-CNN twin (spiking_layers = 0) has no spikes")
        return self.snn(self.encode(self.padded(self.network_input(image, mask)), generator))

    def host(self, spikes: torch.Tensor, snn_input: torch.Tensor) -> torch.Tensor:
        """The host half: spikes (T, B, C, H', W') and the SNN's input -> predicted image (B, 3, H, W)."""
        return self.cnn(spike_rate(spikes), snn_input)

    def forward(self, image: torch.Tensor, mask: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.from_input(self.network_input(image, mask), generator)

    def from_input(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The prediction from the network's input (:meth:`network_input`): each pixel depends only on the
        input within :func:`spiking_halo` + :func:`host_halo` of it (a tile with that halo gives the same)."""
        if self.snn is None:
            return self.cnn(x, x)
        return self.host(self.snn(self.encode(self.padded(x), generator)), x)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def host_conv_shapes(config: ModelConfig) -> list[dict[str, int]]:
    """Geometry of the host CNN's conv layers, for MAC counting.

    ``scale``: the layer's output size relative to the image (1, 1/2, 1/4 ...);
    ``kernel``: taps per output (4 for the transposed convs, whose 4x4 kernel
    at stride 2 gives each output 2x2 taps per input channel).
    """
    shapes, scale = [], 1.0 / config.spiking_stride
    for spec in conv_specs(config)[config.spiking_layers:]:
        scale = scale / 2 if spec.stride == 2 else scale * 2 if spec.stride == -2 else scale
        taps = 4 if spec.stride == -2 else spec.kernel**2
        shapes.append({"in_channels": spec.in_channels, "out_channels": spec.out_channels, "taps": taps,
                       "dilation": spec.dilation, "stride": spec.stride, "output_scale": scale})
    return shapes


def host_receptive_radius(config: ModelConfig) -> int:
    """How many pixels away the host CNN's output looks: its receptive-field radius, in image pixels.

    A layer whose input positions lie ``jump`` image pixels apart widens the
    radius by (kernel // 2) x dilation x jump for a conv (stride 2 then doubles
    the jump), and by ``jump`` for the 4x4 stride-2 transposed conv (each
    output reads the input positions within one step of it; the jump halves).
    The host's input lies ``spiking_stride`` image pixels apart.
    """
    radius, jump = 0.0, float(config.spiking_stride)
    for spec in conv_specs(config)[config.spiking_layers:]:
        if spec.stride == -2:
            radius, jump = radius + jump, jump / 2
        else:
            radius, jump = radius + (spec.kernel // 2) * spec.dilation * jump, jump * spec.stride
    return math.ceil(radius)


def spiking_halo(config: ModelConfig) -> int:
    """The halo a tile of the spiking stage is read with: its receptive-field radius in image pixels
    (layer k widens it by (kernel // 2) x the product of the strides before it), rounded up to
    ``spiking_stride`` so that every tile's window starts on the strided layers' sampling grid."""
    radius, jump = 0, 1
    for spec in conv_specs(config)[:config.spiking_layers]:
        radius, jump = radius + (spec.kernel // 2) * jump, jump * spec.stride
    return -(-radius // jump) * jump


def host_halo(config: ModelConfig) -> int:
    """The halo a tile of the host CNN is read with: the receptive-field radius rounded up to
    ``size_multiple``, so that tiles aligned to it see the strided layers' sampling grid of the
    whole image and their cropped output equals the untiled one."""
    multiple = config.size_multiple
    return -(-host_receptive_radius(config) // multiple) * multiple


# The shipped model's configuration (examples/configs/full_resolution_residual.json, examples/models/scnn_inpaint.pt):
# a harmonic fill of the hole, the six layers at full resolution adding a correction. `neurodeploy train` starts
# from it.
SHIPPED_CONFIG = ModelConfig(hole_fill="smooth", residual=True, final_activation="none", cnn_strides=(1, 1, 1, 1, 1),
                             cnn_dilations=(1, 1, 2, 4, 1))
