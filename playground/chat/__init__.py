"""Chat sessions over one shared model: streamed replies, the guard's attempt loop, probe-ranked replies."""
