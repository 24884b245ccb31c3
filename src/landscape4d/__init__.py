"""landscape4d: one landscape photo -> a looping, explorable 4D Gaussian scene."""

__version__ = "0.1.0"
