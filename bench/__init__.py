"""disentbench core: registry, configuration, training loop, runner and reports."""
