"""The intermediate representation: the normalized graph (graph), its neuron and host-op tables, the NIR reader,
shape inference, the float execution and the host segments' parameters. See docs/ARCHITECTURE.md.
"""
