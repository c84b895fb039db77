"""Chunk: the activity side, where user handlers run.

The ``data`` object handed to a handler (:class:`~.data.ChunkData`), pause requests and the
chunk activity. Imports :mod:`..spec` only; imported by the interpreter (inline chunks use
the same ``data`` object) and the plugin (which registers the activity).
"""
