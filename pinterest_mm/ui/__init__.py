"""Streamlit helpers for the lab: the only core package that imports Streamlit.

- :mod:`.state`: the shared view setting (dataset, split, fusion method, l / lambda, models),
  kept in ``st.session_state`` and mirrored in ``st.query_params``.
- :mod:`.data`: cached loaders (``st.cache_resource`` / ``st.cache_data`` keyed on
  ``Store.version``) around :mod:`pinterest_mm` functions.
- :mod:`.charts`: plotly figure builders; they take computed arrays and draw.
- :mod:`.widgets`: the sidebar, galleries, download buttons and messages.

Pages import from here and from :mod:`pinterest_mm`; they never touch DuckDB or torch.
"""
