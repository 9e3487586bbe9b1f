"""The builder of the embedded demo dataset (``pinterest_mm/demo_data``) from Debian's openclipart.

Run from a clone: ``python -m tools.demo_data.openclipart OUT_DIR``. ``pinterest-mm demo`` does not
need it: it imports the embedded manifest and images.
"""
