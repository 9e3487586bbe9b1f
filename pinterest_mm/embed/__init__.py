"""Users, images and texts in one space (seed 001, Sikka et al., DU2MCE).

- :mod:`.data`: the inputs of a dataset from the store's cached features (image features,
  word-id sequences, users and their train saves).
- :mod:`.model`: the encoders and the mixture of max-margin ranking losses (001 eq. 1-4).
- :mod:`.train`: seeded, resumable training with the checkpoint chosen on validation.
- :mod:`.space`: a trained space (embeddings + text/image query encoders), saved as
  safetensors + JSON.
- :mod:`.retrieval`: median ranks and recall@k of cross-modal retrieval (001 Table 2).
- :mod:`.interests`: user interests from user vectors (001 Table 3) and user clusters.
- :mod:`.search`: nearest neighbours for the Search page.
- :mod:`.report`: the lambda sweep and the tables of the CLI and the note.
"""
