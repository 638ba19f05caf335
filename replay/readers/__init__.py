"""The readers behind ``replay.logs``, one module per source format; import from
``replay.logs``."""
