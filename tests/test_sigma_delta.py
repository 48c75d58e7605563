"""Sigma-delta chip layers: by hand, NumPy vs torch vs stock Lava-DL netx bit for bit, traffic, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurodeploy.chip.sigma_delta import (
    SigmaDeltaLayer,
    calibrate_relu_stack,
    delta_encode,
    messages_sent,
    quantize_relu_layer,
    quantize_relu_stack,
    read_sigma_delta_file,
    run_segment,
    run_segment_torch,
    sigma_delta_step,
    sigma_delta_step_torch,
    transposed_as_conv,
    zero_state,
    zero_state_torch,
)
from neurodeploy.converters.netx_sdnn import runs_in_stock_netx, write_sdnn_segment
from neurodeploy.errors import UserError


def one_neuron() -> SigmaDeltaLayer:
    """Dense 1 -> 1: W = 2, bias mantissa 1, threshold mantissa 1, spike_exp 0 (so both are shifted by 6)."""
    return SigmaDeltaLayer(kind="dense", input_shape=(1,), output_shape=(1,), weight=np.array([[2]]),
                           bias=np.array([1]), vth=1, spike_exp=0)


def test_one_neuron_worked_by_hand() -> None:
    # bias and threshold in the state: 1 << 6 = 64. Payloads in: 100 at step 0, -120 at step 2.
    #   s  a = buffer  sigma  act = max(sigma + 64, 0)  delta = act - act' + residue  sent      out = sent >> 6
    #   0      0         0        64                    64 - 0 + 0     = 64           64 (>=64)  1
    #   1    200       200       264                    264 - 64       = 200          200        3   (200/64 = 3.125)
    #   2      0       200       264                    0                             0          0
    #   3   -240       -40        24                    24 - 264       = -240         -240       -4  (floor -3.75)
    #   4      0       -40        24                    0                             0          0
    layer = one_neuron()
    state, outs = zero_state(layer), []
    for m in (100, 0, -120, 0, 0):
        out, state = sigma_delta_step(layer, state, np.array([[m]]))
        outs.append(int(out[0, 0]))
    assert outs == [1, 3, 0, -4, 0]
    assert (int(state.sigma[0, 0]), int(state.act[0, 0]), int(state.residue[0, 0])) == (-40, 24, 0)

    t_state, t_outs = zero_state_torch(layer), []
    for m in (100, 0, -120, 0, 0):
        t_out, t_state = sigma_delta_step_torch(layer, t_state, torch.tensor([[m]]))
        t_outs.append(int(t_out[0, 0]))
    assert t_outs == outs


def test_a_change_below_the_threshold_waits_in_the_residue() -> None:
    # vth = 1 -> 64 in the state. Payload 20 -> buffer 40: delta 40 < 64 stays as residue; another 20 ->
    # act rises by 40 more, delta = 40 + 40 = 80 >= 64: sent 80, out 80 >> 6 = 1, residue 0.
    layer = one_neuron()
    state, outs = zero_state(layer), []
    for m in (0, 20, 0, 20, 0):
        out, state = sigma_delta_step(layer, state, np.array([[m]]))
        outs.append(int(out[0, 0]))
    assert outs == [1, 0, 0, 0, 1]
    assert int(state.residue[0, 0]) == 0


def small_stack(delta_threshold: float, calibrated: bool = False) -> tuple[list[nn.Module], list[SigmaDeltaLayer]]:
    """conv 3x3 stride 1 -> conv 3x3 stride 2 -> dense, on a 2 x 8 x 8 input in [0, 1] (8-bit payloads)."""
    torch.manual_seed(3)
    modules: list[nn.Module] = [nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, stride=2, padding=1),
                                nn.ReLU(), nn.Linear(3 * 4 * 4, 5), nn.ReLU()]
    x = torch.rand(64, 2, 8, 8, generator=torch.Generator().manual_seed(4))
    scales, sums = calibrate_relu_stack(modules, x)
    return modules, quantize_relu_stack(modules, (2, 8, 8), 1 / 255, 1.0, scales, delta_threshold,
                                        sum_scales=sums if calibrated else None)


def random_payloads(steps: int, extra: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """8-bit frames that change a little each step, delta-encoded, then ``extra`` silent steps."""
    rng = np.random.default_rng(seed)
    frames = np.clip(rng.integers(0, 256, size=shape) + np.cumsum(rng.integers(-20, 21, size=(steps, *shape)),
                                                                  axis=0), 0, 255)
    return np.concatenate([delta_encode(frames), np.zeros((extra, *shape), dtype=np.int64)])


def test_numpy_and_torch_agree_bit_for_bit_on_a_batch() -> None:
    _, layers = small_stack(1 / 64)
    payloads = np.stack([random_payloads(5, 3, (2, 8, 8), seed) for seed in range(3)], axis=1)  # (steps, B, ...)
    ours = run_segment(layers, payloads)
    theirs = run_segment_torch(layers, torch.as_tensor(payloads))
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a, b.numpy())
    assert all(messages_sent(a) > 0 for a in ours)


def test_conv_strided_conv_and_dense_equal_stock_netx_in_lava(tmp_path: Path) -> None:
    from neurodeploy.runtime.lava.sigma_delta_run import run_stock_netx

    _, layers = small_stack(1 / 64, calibrated=True)
    assert [(layer.kind, layer.stride) for layer in layers] == [("conv", (1, 1)), ("conv", (2, 2)), ("dense", (1, 1))]
    path = tmp_path / "sdnn.net"
    write_sdnn_segment(path, layers)
    payloads = random_payloads(5, 3, (2, 8, 8), seed=7)
    reference = run_segment(layers, payloads[:, None])
    torch_out = run_segment_torch(layers, torch.as_tensor(payloads[:, None]))
    lava = run_stock_netx(path, payloads)
    for k, (ref, tor, lv) in enumerate(zip(reference, torch_out, lava, strict=True)):
        assert np.array_equal(ref[:, 0], lv), f"layer {k}: Lava differs from the reference"
        assert np.array_equal(ref, tor.numpy()), f"layer {k}: torch differs from the reference"
        assert messages_sent(lv) > 0


def test_neurodeploys_segment_process_equals_the_reference_with_a_weight_exponent_too() -> None:
    from neurodeploy.runtime.lava.sigma_delta_run import run_segment_process

    modules, _ = small_stack(0.0)
    x = torch.rand(16, 2, 8, 8, generator=torch.Generator().manual_seed(5))
    scales, sums = calibrate_relu_stack(modules, x)
    payloads = random_payloads(4, 3, (2, 8, 8), seed=8)
    for weight_exp in (0, (6, 0, -2)):  # 0: what stock netx runs; a weight exponent: what only this process runs
        layers = quantize_relu_stack(modules, (2, 8, 8), 1 / 255, 1.0, scales, 1 / 256, weight_exp=weight_exp,
                                     sum_scales=sums)
        lava = run_segment_process(layers, payloads)
        for k, (ref, lv) in enumerate(zip(run_segment(layers, payloads[:, None]), lava, strict=True)):
            assert np.array_equal(ref[:, 0], lv), f"layer {k}, weight_exp {weight_exp}: Lava differs"
            assert messages_sent(lv) > 0


def test_the_netx_file_reads_back_the_same_layers(tmp_path: Path) -> None:
    _, layers = small_stack(1 / 16)
    path = tmp_path / "sdnn.net"
    write_sdnn_segment(path, layers)
    back = read_sigma_delta_file(str(path))
    for a, b in zip(layers, back, strict=True):
        assert (a.kind, a.input_shape, a.output_shape, a.stride, a.padding, a.vth, a.spike_exp, a.weight_exp) == \
               (b.kind, b.input_shape, b.output_shape, b.stride, b.padding, b.vth, b.spike_exp, b.weight_exp)
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
    assert layers[0].vth > 0 and runs_in_stock_netx(back)
    # a weight exponent is written only for neurodeploy's own process, and reads back as such
    shifted = [SigmaDeltaLayer(**{**vars(layers[0]), "weight_exp": 6}), *layers[1:]]
    write_sdnn_segment(path, shifted, stock_netx=False)
    back = read_sigma_delta_file(str(path))
    assert [b.weight_exp for b in back] == [6, 0, 0] and not runs_in_stock_netx(back)


def test_unchanged_activations_send_no_message() -> None:
    _, layers = small_stack(0.0)
    frame = np.random.default_rng(1).integers(0, 256, size=(2, 8, 8))
    still = np.stack([frame] * 6)
    outs = run_segment(layers, delta_encode(still)[:, None])
    # layer k (0-based) sends its bias at step 0 and its input's first frame at step k + 1; then nothing
    for k, out in enumerate(outs):
        assert messages_sent(out[: k + 2]) > 0
        assert messages_sent(out[k + 2:]) == 0, f"layer {k} sent messages for a still input"

    # one input pixel changes at step 3: the first conv's messages at step 4 lie in that pixel's 3x3 neighbourhood
    moved = still.copy()
    moved[3:, 1, 4, 5] = (moved[3, 1, 4, 5] + 128) % 256
    first = run_segment(layers, delta_encode(moved)[:, None])[0][:, 0]
    sent_at = np.argwhere(first[4] != 0)
    assert 0 < len(sent_at) <= 4 * 9
    assert np.all(np.abs(sent_at[:, 1] - 4) <= 1) and np.all(np.abs(sent_at[:, 2] - 5) <= 1)
    assert messages_sent(first[5:]) == 0


@pytest.mark.parametrize(("calibrated", "bound"), [(False, 0.01), (True, 0.005)])
def test_the_quantized_stack_follows_the_float_stack(calibrated: bool, bound: float) -> None:
    modules, layers = small_stack(0.0, calibrated)
    x = torch.rand(1, 2, 8, 8, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        y = nn.Sequential(*modules[:4])(x)
    payloads = np.concatenate([np.rint(x.numpy() * 255).astype(np.int64)[None], np.zeros((3, 1, 2, 8, 8), np.int64)])
    second = run_segment(layers, payloads)[1]
    rebuilt = second.sum(axis=0)[0] * layers[1].message_step  # what the next layer's sigma holds, in float
    error = np.linalg.norm(rebuilt - y[0].numpy()) / np.linalg.norm(y[0].numpy())
    assert error < bound, f"relative activation error {error:.4f}"


def test_bad_layers_are_refused_in_one_line(tmp_path: Path) -> None:
    # stock Lava's conv ignores a weight exponent: such a layer runs on the reference and torch, not in a netx file
    shifted = SigmaDeltaLayer(kind="dense", input_shape=(1,), output_shape=(1,), weight=np.array([[2]]),
                              bias=np.array([0]), vth=0, weight_exp=6)
    with pytest.raises(UserError, match="weight exponent"):
        write_sdnn_segment(tmp_path / "shifted.net", [shifted])
    weight = np.ones((2, 3))
    with pytest.raises(UserError, match="delta_threshold"):
        quantize_relu_layer(weight, None, kind="dense", input_shape=(3,), input_step=1.0, input_scale=1.0,
                            act_scale=1.0, delta_threshold=-0.1)
    with pytest.raises(UserError, match="ReLU"):
        quantize_relu_layer(weight, None, kind="dense", input_shape=(3,), input_step=1.0, input_scale=1.0,
                            act_scale=1.0, delta_threshold=0.0, activation="sigmoid")
    with pytest.raises(UserError, match="not ReLU"):
        quantize_relu_stack([nn.Conv2d(1, 2, 3), nn.Sigmoid()], (1, 5, 5), 1.0, 1.0, [1.0], 0.0)
    with pytest.raises(UserError, match="stride"):
        SigmaDeltaLayer(kind="conv", input_shape=(1, 9, 9), output_shape=(1, 3, 3), weight=np.ones((1, 1, 3, 3)),
                        bias=np.zeros(1), vth=0, stride=(3, 3))
    with pytest.raises(UserError, match="threshold"):
        SigmaDeltaLayer(kind="dense", input_shape=(3,), output_shape=(2,), weight=np.ones((2, 3)),
                        bias=np.zeros(2), vth=-1)
    with pytest.raises(UserError) as info:
        SigmaDeltaLayer(kind="dense", input_shape=(3,), output_shape=(2,), weight=np.full((2, 3), 300),
                        bias=np.zeros(2), vth=0)
    assert "\n" not in str(info.value)


def test_dilated_transposed_and_linear_readout_layers_run_alike_everywhere(tmp_path: Path) -> None:
    from neurodeploy.runtime.lava.sigma_delta_run import run_segment_process

    gen = torch.Generator().manual_seed(11)
    up = nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)
    weight, padding = transposed_as_conv(up.weight.detach().numpy(), 1)
    x = torch.rand(1, 3, 5, 5, generator=gen)
    # the transposed conv is the conv of the zero-upsampled input with the flipped, swapped kernel
    upsampled = torch.zeros(1, 3, 9, 9)
    upsampled[..., ::2, ::2] = x
    as_conv = F.conv2d(upsampled, torch.as_tensor(weight), up.bias, padding=padding)
    assert torch.allclose(as_conv, up(x), atol=1e-6)

    dilated = quantize_relu_layer(np.random.default_rng(0).normal(size=(3, 2, 3, 3)), np.full(3, 0.1), kind="conv",
                                  input_shape=(2, 5, 5), input_step=1 / 8, input_scale=1.0, act_scale=2.0,
                                  delta_threshold=1 / 256, padding=(2, 2), dilation=(2, 2), weight_exp=6)
    upsampling = quantize_relu_layer(weight, up.bias.detach().numpy(), kind="conv", input_shape=(3, 5, 5),
                                     input_step=dilated.message_step, input_scale=2.0, act_scale=1.0,
                                     delta_threshold=1 / 256, padding=(padding, padding), upsample=2,
                                     activation="none")
    assert upsampling.output_shape == (2, 10, 10) and not (dilated.stock_netx or upsampling.stock_netx)
    layers = [dilated, upsampling]
    spikes = (np.random.default_rng(3).random((8, 2, 5, 5)) < 0.3).astype(np.int64)
    payloads = np.concatenate([spikes, np.zeros((3, 2, 5, 5), np.int64)])
    reference = run_segment(layers, payloads[:, None])
    torch_out = run_segment_torch(layers, torch.as_tensor(payloads[:, None]))
    lava = run_segment_process(layers, payloads)
    for k, (ref, tor, lv) in enumerate(zip(reference, torch_out, lava, strict=True)):
        assert np.array_equal(ref, tor.numpy()) and np.array_equal(ref[:, 0], lv), f"layer {k} differs"
    assert (reference[1] < 0).any(), "the linear readout sends negative payloads too"
    # the file keeps what only our process runs, and marks it
    write_sdnn_segment(tmp_path / "ours.net", layers, stock_netx=False)
    back = read_sigma_delta_file(str(tmp_path / "ours.net"))
    assert [(b.dilation, b.upsample, b.activation, b.weight_exp) for b in back] == \
        [((2, 2), 1, "relu", 6), ((1, 1), 2, "none", 0)] and not runs_in_stock_netx(back)
