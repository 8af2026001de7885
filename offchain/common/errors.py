"""The one root of every pinpoint exception.

Every error the project raises on purpose derives from `PinpointError`, so a command line can turn any of them into
``error: ...`` and exit status 2 (`protocol.cli.options.handle_errors`) without a hand-picked list, and a caller can
tell a user error (bad model, bad input, bad proof, reverted transaction) from a bug (anything else).
"""


class PinpointError(Exception):
    """Base class of every project exception; its message is meant for the user, one line, naming what is wrong."""
