"""Who comes and goes, live: the kernel's event sources (NFLOG today). Readers turn netlink
messages into values; they never decide what is allowed (that is `policy`)."""
