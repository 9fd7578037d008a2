"""Who may do what (:mod:`~.policy`, the one table of action x role) and API tokens
(:mod:`~.tokens`)."""
