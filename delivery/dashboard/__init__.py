"""The live dashboard: every release at a glance, its analysis as charts, actions from the page.

`summary` and `views` are pure (what a person is shown of the objects), `guard` is the check of a
POST (pure), `store` keeps one informer per kind for the whole server and tells the pages what
changed, `server` serves the pages and the server-sent events. The plugin (`kubectl delivery
dashboard`) and the controller (read-only, when the chart enables it) start it; it acts only
through the callback it is given, so the plugin's annotation functions are the only ones.
"""
