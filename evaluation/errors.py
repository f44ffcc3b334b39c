"""The metric engine's one error: its message names the column and what is wrong with it."""


class MetricInputError(ValueError):
    """The data cannot be evaluated as asked (missing column, non-numeric score, no reference...)."""
