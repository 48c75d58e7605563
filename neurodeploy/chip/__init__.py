"""Chip layers: the neuron models a layer becomes on Loihi 2, in its fixed point."""
