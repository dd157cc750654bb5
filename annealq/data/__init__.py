"""Datasets (offline image files and the bundled digits) and their reference models."""
