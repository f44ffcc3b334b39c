"""The policy layer's error: its message names the file, the rule and the line."""


class PolicyInvalid(ValueError):
    """A policy pack is malformed, or cannot be applied to the evaluation at hand."""
