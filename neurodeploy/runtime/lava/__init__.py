"""Lava: the runtime's lifecycle, a chip segment compiled and run, the reaper, the compatibility layer; the
Lava processes and models live in processes/, which holds only Lava code (Lava's compiler imports it whole).
"""
