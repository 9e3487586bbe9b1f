"""pinterest-mm: an interactive lab for predicting users' interests from multimodal pins.

Implements the Mix-Modality (MM) late-fusion model (image + text) and goes beyond it:
import and clean a dataset of pins, build image and text models, cache every model's
probability vectors, fuse and evaluate them from the cache, and explore it all in a
Streamlit app.
"""

__version__ = "0.1.0"
