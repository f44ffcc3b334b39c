"""Domain exceptions. Each carries one sentence a user can act on; the CLI maps them to exit 2."""


class GovernError(Exception):
    """Base of every foreseeable failure; its message is shown to the user as is."""


class InvalidInput(GovernError):
    """The input (a file, an option, a name) is wrong; nothing was written."""


class NotAllowed(GovernError):
    """The acting user's role does not permit the action."""


class NotFound(GovernError):
    """A named model, version, user, file or store does not exist."""


class StoreBusy(GovernError):
    """Another process held the store for longer than the lock timeout."""


class Conflict(GovernError):
    """The change collides with existing state (a duplicate version, a taken name)."""


class PolicyError(GovernError):
    """A policy pack is malformed or cannot be applied."""
