"""The application: the hybrid spiking-convolutional inpainter (model, data, training, evaluation, its
conversion, tiling, simulation and profile, the sweep and the demo). It imports the toolkit; the toolkit never
imports it.
"""
