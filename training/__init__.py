"""The training loop of MTNet (MTNET.md §7): ``from training.trainer import train``."""
