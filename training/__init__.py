"""The training loop of MTNet (DESIGN.md §7): ``from training.trainer import train``."""
