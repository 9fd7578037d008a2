"""The ``arserver`` commands: one module per command, and the helpers they share.

:mod:`arserver.cli` holds the click group, registers every command here and turns the library's
and the service's exceptions into one line on stderr. A command module defines a click command
and imports only what ``arserver --help`` can afford (click and light modules); the work and its
heavy imports (numpy, PROJ, uvicorn, rich, the application) sit in helper modules it imports when
it runs.

Commands: :mod:`~.transform`, :mod:`~.convert`, :mod:`~.import_`, :mod:`~.serve`,
:mod:`~.worker`, :mod:`~.demo`, :mod:`~.simulate`, :mod:`~.watch`, :mod:`~.retention`,
:mod:`~.token`. Helpers: :mod:`~.options` (options shared by several commands),
:mod:`~.client` (the one HTTP client of a running server), :mod:`~.pointio`,
:mod:`~.conversion`, :mod:`~.progress`, :mod:`~.uploads`, :mod:`~.server`, :mod:`~.showcase`,
:mod:`~.simulation`, :mod:`~.live_client`.

Layering: only :mod:`arserver.cli` (and tests) import this package; it may import everything
else in ``arserver``.
"""

#: Exit status of a command whose data or work failed (a usage error is click's 2).
EXIT_FAILED = 1
#: Exit status of a command line that cannot be used.
EXIT_USAGE = 2
