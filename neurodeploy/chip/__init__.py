"""The chip layer: partition, chip layers, neuron mappings, Loihi fixed point, quantization."""
