"""Importers: existing firewall rule sets (ufw, firewalld, iptables, nftables) turned into a
registry draft, and the lab proof that the draft treats packets as the original did. The parsers
(`iptables`, `nftables`, `ufw`, `firewalld`), the rule algebra (`rules`) and the draft writer
(`draft`) are pure and take text; `sources` reads files and runs the tools, `verify` builds lab
hosts. Never changes a machine's own firewall."""
