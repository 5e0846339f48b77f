"""The one exception type the latent cache raises for problems a user can fix."""


class LatentsError(ValueError):
    """A user-facing error: one line naming the input (shards, tokenizer, output, option) and the reason.

    The CLI prints it to stderr and exits with code 2, without a traceback.
    """
