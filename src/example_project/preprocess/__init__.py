"""Scripts that build processed datasets (and register them in ClearML when online)."""
