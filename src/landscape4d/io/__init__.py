"""Loading and writing: images, masks and hints, videos, PLY files; atomic writes."""
