"""Core mapping, the latency model and NeuroBench metrics: hand-computed cases, a network too big for a chip,
and the NeuroBench cross-check against the neurobench package on the float model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.cost.hw import load_profile
from neurodeploy.cost.mapping import ChipLayerInfo, map_network, resize_conv_chain
from neurodeploy.cost.neurobench_metrics import layer_operations
from neurodeploy.cost.profile import profile_graph
from neurodeploy.inpainter.conversion import convert


def test_a_small_dense_layer_maps_by_hand() -> None:
    loihi = load_profile("loihi")
    # 3000 outputs reading 500 inputs: 500 x 8 bits per neuron; 1,048,576 bits hold 262 neurons per core
    layer = ChipLayerInfo("d", "dense", (500,), (3000,), (3000, 500))
    m = map_network([layer], loihi)
    assert m["layers"][0]["neurons_per_core"] == 1_048_576 // (500 * 8) == 262
    assert m["cores"] == -(-3000 // 262) == 12 and m["chips"] == 1 and m["fits"] is True
    assert m["layers"][0]["binding"] == "synapse_bits_per_core"


def test_a_conv_block_meets_every_limit_and_the_image_that_fits_is_the_largest() -> None:
    loihi = load_profile("loihi")  # the generic mapper: blocks of channels x rows x columns
    limit = {k: f.value for k, f in loihi.resources.items()}
    layer = ChipLayerInfo("c", "conv", (4, 64, 64), (32, 64, 64), (32, 4, 3, 3), (1, 1), (1, 1))
    m = map_network([layer], loihi, resize_conv_chain([layer]))
    block = m["layers"][0]
    co, th, tw = block["block"]
    assert co * th * tw <= limit["neurons_per_core"]
    assert co * th * tw * 4 * 9 * 8 <= limit["synapse_bits_per_core"]
    assert 4 * min(64, th + 2) * min(64, tw + 2) <= limit["fan_in_per_core"]
    assert m["cores"] == -(-32 // co) * -(-64 // th) * -(-64 // tw)
    side = m["largest_input"]
    resize = resize_conv_chain([layer])
    assert map_network(resize(side), loihi)["fits"] and not map_network(resize(side + 1), loihi)["fits"]


def test_loihi2_maps_conv_layers_in_power_of_two_column_blocks_as_lavas_compiler_does() -> None:
    """A conv core holds every channel and row of 2^k output columns: 4 words per neuron plus the shared
    kernel's synapse words within 12,800 (hw_profiles/loihi2.toml)."""
    loihi2 = load_profile("loihi2")
    # 24 x 32 x 99 outputs of 3 x 3 x 3 kernels (6-bit weights): kernel words 27 x ceil(24 x 6 / 64) = 81;
    # 8 columns: 4 x 6144 + 81 > 12,800; 4 columns: 4 x 3072 + 81 = 12,369 fits: ceil(99 / 4) = 25 cores
    conv = ChipLayerInfo("c", "conv", (3, 66, 200), (24, 32, 99), (24, 3, 3, 3), (2, 2), weight_bits=6)
    m = map_network([conv], loihi2)["layers"][0]
    assert (m["cores"], m["block"], m["binding"]) == (25, (24, 32, 4), "memory_words_per_core")
    assert m["synapse_bits_per_core"] == 81 * 64
    # the kernel's words grow with the weights' width: 8-bit weights, 27 x ceil(24 x 8 / 64) = 81 still
    assert map_network([replace(conv, weight_bits=8)], loihi2)["layers"][0]["synapse_bits_per_core"] == 81 * 64
    # a bias-driven input layer (no synapses): 3 x 66 x 16 = 3168 neurons, 12,672 words; 32 columns do not fit
    inp = ChipLayerInfo("in", "input", (3, 66, 200), (3, 66, 200), ())
    m = map_network([inp], loihi2)["layers"][0]
    assert (m["cores"], m["block"]) == (13, (3, 66, 16))
    # a layer that fits one core stays whole
    small = ChipLayerInfo("s", "conv", (2, 8, 8), (4, 6, 6), (4, 2, 3, 3), weight_bits=4)
    assert map_network([small], loihi2)["layers"][0]["cores"] == 1
    # kernels too big for a core whatever its neurons: 64 x 5 x 5 x ceil(64 x 9 / 64) = 14,400 words > 12,800
    # (the shipped model's dilated cnn3 with --chip all); only fewer channels per core shrink them: 32 channels,
    # 64 x 25 x 5 = 8,000 words + 4 words for each of 32 x 32 x 32 neurons > 12,800: then the columns halve
    dilated = ChipLayerInfo("d", "conv", (64, 36, 36), (64, 32, 32), (64, 64, 5, 5), weight_bits=9)
    m = map_network([dilated], loihi2)["layers"][0]
    assert m["cores"] > 0 and m["block"][0] == 32 and m["synapse_bits_per_core"] == 64 * 25 * 5 * 64
    assert m["cores"] == 2 * (32 // m["block"][1]) * (32 // m["block"][2])


def test_loihi2_divides_a_dense_layer_by_its_worst_ratio_until_it_fits() -> None:
    """Lava's compiler on PilotNet's 2560 -> 100 layer printed SynMem 61,440 (ratio 6), then 12,800 (ratio 2):
    12 cores. Here: 16-bit synapses, 4 a word: 2560 x 25 = 64,000 words, ratio 6; 17 neurons: 2560 x 5 = 12,800,
    ratio 2; 9 neurons: 2560 x 3 = 7,680 fits."""
    loihi2 = load_profile("loihi2")
    dense = ChipLayerInfo("d", "dense", (2560,), (100,), (100, 2560))
    m = map_network([dense], loihi2)["layers"][0]
    assert (m["cores"], m["neurons_per_core"], m["binding"]) == (12, 9, "synmem_words_per_core")
    assert m["synapse_bits_per_core"] == 2560 * 3 * 64
    assert map_network([ChipLayerInfo("e", "dense", (100,), (50,), (50, 100))], loihi2)["layers"][0]["cores"] == 1
    # one neuron's row of synapses beyond the synapse memory: 20,000 axons x 1 word > 12,000, not mappable
    wide = ChipLayerInfo("wide", "dense", (20_000,), (10,), (10, 20_000))
    m = map_network([wide], loihi2)
    assert (m["fits"], m["limiting"], m["chips"]) == (False, "synmem_words_per_core", None)


def test_a_network_too_big_for_one_chip_says_why() -> None:
    loihi2 = load_profile("loihi2")
    # 200,000 outputs reading 1000 inputs: 1000 x 50,000 words, ratio 4167; 48 neurons a core: 1000 x 12 =
    # 12,000 words and 4 x 48 + 12,000 <= 12,800: fits, 4167 cores, 33 chips
    big = ChipLayerInfo("big", "dense", (1000,), (200_000,), (200_000, 1000))
    m = map_network([big], loihi2)
    assert (m["fits"], m["limiting"], m["chips"], m["cores"]) == (False, "cores_per_chip", 33, 4167)
    assert "need 33 chips" in m["why"]
    # fan-in on Loihi: one neuron reads 5000 inputs, more axons than a core has: not mappable at all
    wide = ChipLayerInfo("wide", "dense", (5000,), (10,), (10, 5000))
    m = map_network([wide], load_profile("loihi"))
    assert (m["fits"], m["limiting"], m["chips"]) == (False, "fan_in_per_core", None)
    # a big image for a conv layer
    conv = ChipLayerInfo("c", "conv", (4, 512, 512), (32, 512, 512), (32, 4, 3, 3), (1, 1), (1, 1))
    m = map_network([conv], loihi2)
    assert m["fits"] is False and m["limiting"] == "cores_per_chip" and m["chips"] > 1


def test_a_user_profile_without_resources_maps_nothing_and_bad_resources_are_refused(tmp_path: Path) -> None:
    from neurodeploy.cost.latency import latency
    from neurodeploy.cost.mapping import mapping_profiles
    from neurodeploy.errors import UserError

    text = (Path(__file__).parents[1] / "hw_profiles" / "loihi.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("value = 1024\n", "value = 0.5\n"))
    with pytest.raises(UserError, match="whole number"):
        load_profile(bad)
    bare = load_profile("cmos45nm_snn")  # no [resources], no per-operation times
    assert mapping_profiles([bare, load_profile("loihi")]) == [load_profile("loihi")]
    assert latency([ChipLayerInfo("d", "dense", (4,), (2,), (2, 4), synops_per_step=(1.0,))], None, bare) is None


def _float_mlp() -> tuple[torch.nn.Sequential, nir.NIRGraph]:
    """An snnTorch IF-like MLP with half its weights zero; weights on Loihi's 8-bit grid, so deployed == float."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    g = torch.Generator().manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 10, bias=False), snn.Leaky(beta=torch.full((10,), 0.5), threshold=torch.ones(10),
                                                       init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(10, 4, bias=False), snn.Leaky(beta=torch.full((4,), 0.5), threshold=torch.ones(4),
                                                      init_hidden=True, reset_mechanism="zero", output=True))
    with torch.no_grad():
        for lin in (net[0], net[2]):
            w = torch.randint(-3, 6, lin.weight.shape, generator=g).float() / 4  # multiples of 1/4
            w[torch.rand(w.shape, generator=g) < 0.5] = 0.0
            lin.weight.copy_(w)
    return net, export_to_nir(net, torch.rand(12))


def test_neurobench_metrics_equal_the_neurobench_package_on_the_float_model(tmp_path: Path) -> None:
    """neurobench's own Benchmark (SynapticOperations, ActivationSparsity, ConnectionSparsity, Footprint) on the
    float snnTorch model, against the profile's ``neurobench`` block of the deployed network."""
    # Lava sets the multiprocessing start method when this module is first imported and fails if it is
    # already fixed; the tqdm bar inside neurobench's Benchmark fixes it. Import Lava's first.
    import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel

    net, graph = _float_mlp()
    bundle = convert(graph, tmp_path / "mlp.bundle", dt=1e-4)
    x = (np.random.default_rng(5).random((6, 10, 12)) < 0.4).astype(np.float32)
    summary, _ = profile_graph(bundle, x, backend="reference", hw=["loihi2"])
    ours = summary["neurobench"]

    model = SNNTorchModel(net)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.zeros(x.shape[0])),
                                       batch_size=x.shape[0])
    bench = Benchmark(model, data, [], [], [[ConnectionSparsity], [ActivationSparsity, SynapticOperations]])
    theirs = bench.run(verbose=False)
    assert ours["synaptic_operations"]["Effective_ACs"] == pytest.approx(theirs["SynapticOperations"]["Effective_ACs"])
    assert ours["synaptic_operations"]["Effective_MACs"] == theirs["SynapticOperations"]["Effective_MACs"] == 0
    assert ours["synaptic_operations"]["Dense"] == pytest.approx(theirs["SynapticOperations"]["Dense"])
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"])
    assert ours["connection_sparsity"] == pytest.approx(theirs["ConnectionSparsity"], abs=5e-5)  # theirs: 4 decimals
    assert ours["synaptic_operations"]["Effective_ACs"] > 0 and 0 < ours["activation_sparsity"] < 1
    synaptic_layers = SNNTorchModel(torch.nn.Sequential(net[0], net[2]))
    assert ours["footprint_bytes_float32"] == Footprint()(synaptic_layers)


def test_graded_inputs_are_macs_and_binary_inputs_acs() -> None:
    w = np.array([[1, 0, 2], [0, 0, 3]], np.int8)
    events = np.array([[0, 5, 7], [1, 0, 1]])  # step 0 graded, step 1 spikes
    ops = layer_operations("dense", events, w)
    # step 0: inputs 1 and 2 active: column nonzeros 0 + 2 = 2 MACs; step 1: inputs 0 and 2: 1 + 2 = 3 ACs
    assert ops == {"effective_macs": 2.0, "effective_acs": 3.0, "dense": 12.0}


def test_the_profile_json_of_a_graph_too_wide_for_a_core_says_fits_false_and_why(tmp_path: Path) -> None:
    """Input(5000) -> Linear(10 x 5000) -> IF on the chip: one neuron reads more inputs than a core has axons."""
    n = 5000
    w = np.zeros((10, n), np.float32)
    w[np.arange(10), np.arange(10)] = 2.0
    nodes = {"input": nir.Input(input_type={"input": np.array([n])}), "fc": nir.Linear(weight=w),
             "lif": nir.IF(r=np.ones(10, np.float32), v_threshold=np.ones(10, np.float32)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    graph.infer_types()
    bundle = convert(graph, tmp_path / "wide.bundle")
    x = np.zeros((1, 3, n), np.float32)
    x[0, :, :10] = 1.0
    summary, _ = profile_graph(bundle, x, backend="reference", hw=["loihi", "spinnaker2"])
    m = summary["mapping"]["loihi"]
    assert (m["fits"], m["limiting"], m["chips"]) == (False, "fan_in_per_core", None)
    assert "lif" in m["why"] and m["layers"][0]["fan_in_per_core"] == n
    assert summary["latency_s"]["loihi"] is None  # nothing mapped, nothing timed
    assert summary["mapping"]["spinnaker2"]["fits"] is True  # no axon limit on SpiNNaker 2's PEs
