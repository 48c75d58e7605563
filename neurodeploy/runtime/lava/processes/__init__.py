"""neurodeploy's Lava processes and process models, kept in a package of their own.

Lava's compiler finds the models of a process by importing every module in
that process's directory, so only Lava code lives here:

* :mod:`.io` - ``FrameSource`` and ``SpikeSink``, the bridge's two ends;
* :mod:`.segment` - ``ChipSegment``, a whole multi-layer chip segment as one process.
"""
