"""The PPS registry as a document language: hardened YAML (yamlsafe), entries and names (entries,
naming), load and validate (load), dump back to YAML (dump) and the JSON Schema (schema).
It says what a registry file means as values; it never compiles rules or touches the kernel."""
