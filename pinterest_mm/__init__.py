"""pinterest-mm: an interactive lab for predicting users' interests from multimodal pins.

Implements the Mix-Modality (MM) late-fusion model (image + text) and goes beyond it:
import and clean a dataset of pins, build image and text models, cache every model's
probability vectors, fuse and evaluate them from the cache, and explore it all in a
Streamlit app.

The library facade is :class:`pinterest_mm.api.Lab` (``from pinterest_mm import Lab``),
imported on first use so that ``import pinterest_mm`` stays light.
"""

__version__ = "0.1.0"

__all__ = ["Lab", "__version__"]


def __getattr__(name: str):
    if name == "Lab":
        from .api import Lab

        return Lab
    raise AttributeError(f"module 'pinterest_mm' has no attribute {name!r}")
