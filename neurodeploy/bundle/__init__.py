"""The deployment bundle: its manifest (constants, digest, validation), the bundle class, a format-2 bundle read
into a deployment, and the conversion of a NIR graph into a bundle. See docs/ARCHITECTURE.md.
"""
