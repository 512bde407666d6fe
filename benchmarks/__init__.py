"""Side-by-side benchmarks: the edge runner against Keras ``predict`` and plain numpy."""
