"""`pps harden`: the change that removes each undocumented or risky listener, and its safe apply.

units.py, binds.py and plan.py are pure (values in, values out); survey.py observes the machine
(the audit, /proc, config files, dpkg's lists) and feeds plan.py; apply.py and watchdog.py
perform a plan's unit changes behind the `ServiceManager` seam (managers.py) with the firewall's
confirm-or-roll-back safety. Nothing here edits a config file or removes a package: those
changes are planned, never applied.
"""
