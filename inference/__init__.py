"""Test-time inference: configuration, the streaming runner, post-processing and writing."""
