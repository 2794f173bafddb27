"""Probe engines: connect (unprivileged), SYN (raw sockets, root) and UDP. Each runs synchronously
in a worker thread over non-blocking sockets and reports per-probe outcomes through a callback."""
