"""The joint space's input error (its own module: :mod:`.data` and :mod:`.sentence` both raise it)."""


class EmbedInputError(ValueError):
    """The dataset lacks something the joint space needs; the message says what to run."""
