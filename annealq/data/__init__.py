"""Datasets (offline image files and the bundled digits) and the reference models trained on them."""
