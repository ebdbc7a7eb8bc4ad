"""Dataset adapters and the synthetic Slakh-format generator."""
