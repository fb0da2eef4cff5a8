"""The writing app's behaviour, one concern per module, each a plain class the app owns.

Where a new feature goes:

- Something the writer does with a key: add the key to :mod:`tui.keys` (the one table behind
  the bindings and the help screen), an ``action_*`` on :class:`tui.app.QuillmateApp` that is one
  line handing over to a flow, and the work itself as a public method of that flow.
- Something a widget or dialog reports: the widget posts a message (a nested class on it); the
  app's ``@on`` handler, one line, passes its fields to a flow.
- The work itself goes in the flow of its concern: ``generation`` (running and stopping any
  generation: :meth:`~tui.flows.generation.GenerationFlow.run` and ``consume``), ``continuation``
  (ghost text), ``rewriting``, ``conversation`` (Chat tab), ``templates`` (forms, Results tab),
  ``panels`` (side panel, notes, help), ``backends`` (loading, switching, Settings tab),
  ``saving`` (files, quit), ``indicators`` (status bar, Stats tab). A new concern gets a new
  module and a new :class:`~tui.flows.base.Flow` built in ``QuillmateApp.__init__``.

A flow reaches the app only through :class:`~tui.flows.base.Services` (the session, the backend,
the main screen's widgets, notifications, and Textual's scheduling, workers included) and the
other flows it is given by name; it never imports the app. Generations are recorded in the
session through :class:`assistant.sessions.GenerationRecorder` (``GenerationFlow.record``).
"""
