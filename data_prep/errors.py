"""The one exception type data_prep raises for problems a user can fix (bad paths, bad parameters)."""


class DataPrepError(ValueError):
    """A user-facing error: the message is one line that names the path or value and the reason.

    The CLI prints it to stderr and exits with code 2, without a traceback.
    """
