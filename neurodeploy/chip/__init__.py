"""The chip backend: partition into chip and host segments, chip layers, the neuron mapping onto Loihi's CUBA
neuron, the fixed-point arithmetic and its constants (cuba), quantization, calibration, sigma-delta layers
(sigma_delta), payload encoding and the chip arithmetic on NumPy (reference). See docs/ARCHITECTURE.md.
"""
