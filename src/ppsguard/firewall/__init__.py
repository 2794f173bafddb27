"""The registry in the kernel: renderers for nftables and iptables (render/), the tool seam (nft),
the live rule-set reader (live), the whole-rule-set evaluator (fate, packets, legacy), the one
answer to "is the registry enforced here?" (state), and the safe apply (apply, watchdog,
statedir, session = the anti-lockout guard, established = connections kept open).
Renderers, the live reader, the evaluator and the judgement are pure; nft, apply, watchdog,
statedir, session and established do I/O. Nothing here decides policy (that is policy/)."""
