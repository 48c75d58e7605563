"""``neurodeploy convert``: a trained model (or a NIR graph) to a deployment bundle.

The SNNConv2d stage is quantized (:mod:`neurodeploy.quantize`) with the LIF
mapping of :mod:`neurodeploy.lif_mapping` and written as netx HDF5
(``snn.net``) and NIR (``snn.nir``); the CNN stage is kept for the host
(``host.pt``). Everything is written into a temporary directory that is
renamed into place at the end, so a failed or interrupted conversion leaves
no bundle behind. See :mod:`neurodeploy.bundle` for the layout.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from neurodeploy import bundle as bundle_format
from neurodeploy.bundle import Bundle
from neurodeploy.converters.netx_io import NetxConvLayer, write_netx
from neurodeploy.converters.nir_io import SpikingStage, TauConvention, read_nir, write_nir
from neurodeploy.encoding import PAYLOAD_BITS, PAYLOAD_MAX
from neurodeploy.errors import UserError
from neurodeploy.io import atomic_directory, sha256_file
from neurodeploy.lif_mapping import lava_steps, map_lif, netx_reset
from neurodeploy.model import HybridInpainter, ModelConfig
from neurodeploy.quantize import QuantizedCubaLayer, quantize_layer

DEFAULT_TILE = 128


def quantize_stage(stage: SpikingStage, encoding: str) -> QuantizedCubaLayer:
    payload_max = PAYLOAD_MAX if encoding == "constant" else 1
    return quantize_layer("snn.conv", stage.weight, stage.lif, payload_max)


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("neurodeploy", "torch", "norse", "lava-nc", "lava-dl", "numpy", "nir"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def convert(model_or_path: HybridInpainter | str | os.PathLike[str], out_dir: str | os.PathLike[str],
            *, force: bool = False, tile: int = DEFAULT_TILE, dt: float = 1e-3,
            tau_convention: TauConvention = "auto", encoding: str = "poisson", timesteps: int = 8) -> Bundle:
    """Convert a HybridInpainter, a checkpoint path or a ``.nir`` file into a bundle at ``out_dir``.

    ``dt``, ``tau_convention``, ``encoding`` and ``timesteps`` apply to NIR
    input only (a checkpoint carries its own).
    """
    if tile < 1:
        raise UserError(f"tile size {tile} must be at least 1", "pass e.g. `tile=128`")
    bundle_format.check_target(out_dir, force)
    source: dict[str, Any]
    host_state: dict[str, torch.Tensor] | None = None
    config: ModelConfig | None = None
    if isinstance(model_or_path, HybridInpainter):
        model = model_or_path
        source = {"kind": "model", "path": None, "sha256": None}
    else:
        path = Path(model_or_path)
        if not path.is_file():
            raise UserError(f"{path} does not exist", "pass a checkpoint (.pt) or a NIR graph (.nir)")
        source = {"kind": "nir" if path.suffix == ".nir" else "checkpoint", "path": str(path),
                  "sha256": sha256_file(path)}
        model = None
        if source["kind"] == "checkpoint":
            from neurodeploy.checkpoint import load_model

            model, _ = load_model(path)
    if model is not None:
        config = model.config
        stage = SpikingStage(weight=model.snn.conv.weight.detach().double().numpy(),
                             input_shape=(config.snn_in_channels, tile, tile), lif=config.lif)
        encoding, timesteps = config.encoding, config.timesteps
        host_state = {k: v.detach().cpu() for k, v in model.cnn.state_dict().items()}
    else:
        if encoding not in ("constant", "poisson"):
            raise UserError(f"unknown encoding {encoding!r}", "pass `encoding=constant` or poisson")
        if timesteps < 1:
            raise UserError("`timesteps` must be at least 1", "pass e.g. `timesteps=8`")
        stage = read_nir(model_or_path, dt=dt, tau_convention=tau_convention)

    quant = quantize_stage(stage, encoding)
    halo = stage.weight.shape[-1] // 2
    c_in = stage.input_shape[0]
    tile_h, tile_w = (tile, tile) if model is not None else stage.input_shape[1:]
    layer = NetxConvLayer(input_shape=(c_in, tile_h + 2 * halo, tile_w + 2 * halo), weight=quant.weight,
                          padding=quant.padding, i_decay=quant.i_decay, v_decay=quant.v_decay,
                          vth_mant=quant.vth_mant)
    reset_interval, reset_offset = netx_reset(timesteps)
    mapping = map_lif(stage.lif)
    with atomic_directory(out_dir, force=force) as tmp:
        write_netx(tmp / bundle_format.SNN_FILE, layer)
        write_nir(tmp / bundle_format.NIR_FILE, stage)
        if host_state is not None and config is not None:
            from neurodeploy.io import save_torch

            save_torch({"format": bundle_format.HOST_FORMAT, "version": 1,
                        "model_config": config.to_dict(), "state_dict": host_state},
                       tmp / bundle_format.HOST_FILE)
        files = {name: sha256_file(tmp / name) for name in sorted(os.listdir(tmp))}
        manifest = {
            "format": bundle_format.FORMAT,
            "format_version": bundle_format.FORMAT_VERSION,
            "source": source,
            "files": files,
            "timesteps": timesteps,
            "input": {
                "channels": c_in,
                "encoding": encoding,
                "payload_bits": PAYLOAD_BITS if encoding == "constant" else 0,
                "layout": "(C, H, W); channels = masked RGB in [0, 1] then the mask (1 = missing)"
                          if config is not None and config.mask_input else "(C, H, W)",
                "shape_rule": "any H x W: the image is cut into tiles of tile.height x tile.width, "
                              "each read with a halo of tile.halo pixels (zeros beyond the image)",
            },
            "tile": {"height": int(tile_h), "width": int(tile_w), "halo": int(halo)},
            "lava": {"input_message_bits": PAYLOAD_BITS if encoding == "constant" else 0,
                     "reset_interval": reset_interval, "reset_offset": reset_offset,
                     "steps_per_image": lava_steps(timesteps), "output_delay_steps": 1},
            "quantization": quant.summary(),
            "lif_mapping": {
                "norse": asdict(stage.lif),
                "lava": {"iDecay": quant.i_decay, "vDecay": quant.v_decay, "vThMant": quant.vth_mant,
                         "du": quant.i_decay - 1, "dv": quant.v_decay, "bias": 0,
                         "weight_exponent": 0, "weight_scale": quant.weight_scale},
                "exact": {"current_decay": mapping.current_decay, "voltage_decay": mapping.voltage_decay,
                          "threshold": mapping.threshold_per_weight_unit * quant.weight_scale
                          * quant.payload_max},
                "tau_convention": stage.tau_convention,
                "equations": "neurodeploy.lif_mapping (module docstring)",
            },
            "model_config": config.to_dict() if config is not None else None,
            "versions": _versions(),
        }
        manifest[bundle_format.DIGEST_FIELD] = bundle_format.manifest_digest(manifest)
        (tmp / bundle_format.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return Bundle.load(out_dir)
