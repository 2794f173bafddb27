"""The practice lab behind `pps lab`: hosts made of network namespaces on 198.18.0.0/15 and
2001:db8::/32 (hosts) and the small demo responders they run (responders). Never addresses
anything outside those ranges; pytest fixtures on top of it live in `ppsguard.testing`."""
