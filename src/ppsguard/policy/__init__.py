"""The registry's meaning: compile a host's first-match policy (compile), single-tuple verdicts
(evaluate), the vectorised bulk evaluator (bulk), exact packet-space arithmetic (space) and lint
(lint, risks). Pure: no files, sockets or subprocesses; the document language is `registry`, the
kernel side is `firewall`."""
