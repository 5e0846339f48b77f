"""The one exception type the generator workflow raises for problems a user can fix."""


class GenerationError(ValueError):
    """A user-facing error: one line naming the input (latents, tokenizer, run, shards, config) and the reason.

    The CLI prints it to stderr and exits with code 2, without a traceback, before any work starts.
    """
