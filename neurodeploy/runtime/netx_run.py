r"""Run a Lava-DL netx network (:mod:`neurodeploy.converters.netx_in`) on the toolkit's backends.

The bias-driven input layer (:class:`neurodeploy.converters.netx_in.BiasInput`) is
stepped here, on NumPy: its neurons have no synapses, so each step is
:func:`neurodeploy.chip.cuba.cuba_step` with no input and the frame as the
voltage bias (``bias_mant << 6``). Its spikes are the frames of the chip
layers, which run on any simulated row of :mod:`neurodeploy.runtime.backends`
(reference or torch, bit-exact with each other), or, for ``lava``, the file
itself runs as stock netx (:mod:`neurodeploy.runtime.lava.netx_stock`).

Steps are Lava's, as stock netx runs the file from zero state with no reset:
at step t the input layer integrates its bias and layer k reads the spikes
layer k - 1 sent at step t - 1 (none at step 0), so layer k integrates only
its bias for its first k steps, as in Lava. Each layer therefore runs on the
backend by itself, on the previous layer's spikes delayed by one step
(:func:`delayed`); every frame starts from zero state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.chip.cuba import STATE_SCALE, CubaParams, CubaState, cuba_step
from neurodeploy.converters.netx_in import BiasInput, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.io import list_images, read_image
from neurodeploy.runtime.backends import backend

FRAMES_PER_BATCH = 8  # frames a command runs at once: its working memory is this batch's, not the folder's


def input_spikes(layer: BiasInput, bias_mant: np.ndarray, steps: int) -> np.ndarray:
    """The input layer's spikes (B, T, *shape) uint8 for bias mantissas (B, *shape), from zero state."""
    bias_mant = np.asarray(bias_mant)
    state = CubaState.zeros(bias_mant.shape)
    params = CubaParams(du=layer.i_decay - 1, dv=layer.v_decay, vth=layer.vth_mant)
    zero = np.zeros(bias_mant.shape)
    bias = bias_mant.astype(np.float64) * STATE_SCALE
    out = np.zeros((bias_mant.shape[0], steps, *bias_mant.shape[1:]), dtype=np.uint8)
    for t in range(steps):
        out[:, t] = cuba_step(state, zero, params, bias)
    return out


def run_netx(network: NetxNetwork, bias_mant: np.ndarray, steps: int, backend_name: str = "torch",
             device: str = "cpu", path: str | Path | None = None) -> list[np.ndarray]:
    """Frames' bias mantissas (B, *input shape) for ``steps`` Lava steps -> every layer's spikes (B, T, *shape)
    uint8, the input layer first, on ``backend_name`` (``lava``: stock netx on ``path``, frame by frame)."""
    if network.input is None:
        raise UserError("this netx network has no bias-driven input layer (its first layer reads spikes)",
                        "run a network whose layer/0 has a neuron group, as SLAYER's export writes it")
    bias_mant = np.asarray(bias_mant)
    if bias_mant.shape[1:] != network.input.shape:
        raise ValueError(f"bias of shape {bias_mant.shape[1:]} for input layer {network.input.shape}")
    spec = backend(backend_name)
    if spec.run_batch is None:
        if backend_name != "lava" or path is None:
            raise UserError(f"backend {backend_name!r} does not run a netx network here",
                            "pass --backend torch, reference or lava")
        from neurodeploy.runtime.lava.netx_stock import run_stock  # Lava only when asked for

        runs = [run_stock(path, network, b, steps) for b in bias_mant]
        return [np.stack([run[k] for run in runs]) for k in range(len(network.layers) + 1)]
    outs = [input_spikes(network.input, bias_mant, steps)]
    for layer in network.layers:
        outs.append(spec.run_batch([layer], delayed(outs[-1]), device)[0])
    return outs


def run_netx_spikes(network: NetxNetwork, spikes: np.ndarray, backend_name: str = "torch", device: str = "cpu",
                    path: str | Path | None = None) -> list[np.ndarray]:
    """A network whose input layer has no neuron group, on input spikes (B, T, *input shape) 0/1 -> every
    chip layer's spikes (B, T, *shape) uint8, in Lava's steps (the first layer reads step t's input at t + 1);
    ``lava``: stock netx on ``path``, sample by sample."""
    spikes = np.asarray(spikes)
    if network.input is not None:
        raise UserError("this netx network's input layer is driven through its bias", "pass frames, not spikes")
    if spikes.shape[2:] != network.input_shape or not np.isin(spikes, (0, 1)).all():
        raise UserError(f"input of shape {spikes.shape[2:]} (values {np.unique(spikes)[:4]}) for a network that "
                        f"reads 0/1 spikes of shape {network.input_shape}",
                        f"pass an array (N, T, {', '.join(map(str, network.input_shape))}) of 0 and 1")
    spec = backend(backend_name)
    if spec.run_batch is None:
        if backend_name != "lava" or path is None:
            raise UserError(f"backend {backend_name!r} does not run a netx network here",
                            "pass --backend torch, reference or lava")
        from neurodeploy.runtime.lava.netx_stock import run_stock_spikes  # Lava only when asked for

        runs = [run_stock_spikes(path, network, x) for x in spikes]
        return [np.stack([run[k] for run in runs]) for k in range(len(network.layers))]
    outs, previous = [], spikes.astype(np.uint8)
    for layer in network.layers:
        previous = spec.run_batch([layer], delayed(previous), device)[0]
        outs.append(previous)
    return outs


def delayed(spikes: np.ndarray) -> np.ndarray:
    """Spikes (B, T, ...) as the next layer reads them in Lava: one step later, nothing at step 0."""
    return np.concatenate([np.zeros_like(spikes[:, :1]), spikes[:, :-1]], axis=1)


def image_bias(layer: BiasInput, rgb: np.ndarray) -> np.ndarray:
    """A photo (H, W, 3) uint8 as the input layer's bias mantissas (C, H, W), the way lava-dl's PilotNet
    dataset makes them: resized to the layer's W x H (bilinear), p = pixel / 255, then
    ``int32(2·weight·p - weight + bias)`` (the transform on p scaled to [-1, 1]); grey for one channel."""
    from PIL import Image  # Pillow: only images need it

    if len(layer.shape) != 3 or layer.shape[0] not in (1, 3):
        raise UserError(f"the input layer is {layer.shape}, not an image of 1 or 3 channels",
                        "pass the frames as .npy of that shape instead")
    channels, height, width = layer.shape
    image = Image.fromarray(np.asarray(rgb, dtype=np.uint8)).resize((width, height), resample=Image.BILINEAR)
    if channels == 1:
        image = image.convert("L")
    pixels = np.asarray(image, dtype=np.float64).reshape(height, width, channels) / 255
    value = 2 * layer.scale * pixels - layer.scale + layer.offset
    return value.astype(np.int32).transpose(2, 0, 1)


def read_frames(layer: BiasInput, path: Path) -> tuple[list[str], np.ndarray]:
    """``--image`` for a netx network: a photo, a .npy of frames x (*shape or N, *shape; the network's input
    units, ``weight·x + bias``), or a folder of photos -> (names, bias mantissas (N, *shape))."""
    if not path.exists():
        raise UserError(f"{path} does not exist", "check the path")
    if path.is_dir():
        photos = list_images(path)
        if not photos:
            raise UserError(f"folder {path} holds no images", "pass a folder with PNG or JPEG files")
        return [p.stem for p in photos], np.stack([image_bias(layer, read_image(p)) for p in photos])
    if path.suffix != ".npy":
        return [path.stem], image_bias(layer, read_image(path))[None]
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable .npy ({exc})", "save the frames with numpy.save") from None
    x = x[None] if x.shape == layer.shape else x
    if x.shape[1:] != layer.shape or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{path} holds {x.shape}, not frames of the input layer's shape {layer.shape}",
                        f"save an array of shape {layer.shape} or (N, {', '.join(map(str, layer.shape))})")
    return [f"{path.stem}_{n}" for n in range(len(x))], layer.bias_mant(x)
