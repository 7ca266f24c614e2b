"""Developer tools behind `thaw sync`, `thaw init` and `thaw types`."""
