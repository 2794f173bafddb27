"""`pps serve`: the guard's desk in the browser — the fleet, each host's building, live alerts,
the registry and the reports, read from the store and served by Starlette.

What this room must not do: change anything (it never applies a rule set nor writes the store),
trust any text from outside (Jinja2 autoescapes every value; no inline script), or fetch
anything at run time (htmx and its SSE extension are vendored in `static/`).
"""
