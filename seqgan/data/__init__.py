"""Datasets: the embedded synthetic shapes, real image-folder preparation, the prepared-split format."""
