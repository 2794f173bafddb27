"""The PPS registry's policy engine: load and validate (registry), resolve names (naming),
compile a host's first-match policy (compile), single-tuple verdicts (evaluate), the vectorised
bulk evaluator (bulk) and rule-set analysis (analyze). Firewall renderers build on `compile`."""
