"""From a source (file, URL, feed, scan, upload) to a ``Document``, and from a ``Document`` to ``Chunk``s."""
