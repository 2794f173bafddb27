"""The registry in the kernel: renderers for nftables and iptables (render/), the tool seam (nft),
the live rule-set reader (live), safe apply with a detached watchdog (apply, watchdog).
Renderers and the live reader are pure; only nft, apply and watchdog run tools."""
