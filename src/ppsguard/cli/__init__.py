"""The `pps` command line: thin layers that parse arguments, call the library and render.

Before NumPy is first imported, the command line asks OpenBLAS for one thread. No pps command
does linear algebra, yet OpenBLAS starts a thread per core when NumPy loads, and their start-up
spin cost every command 0.08-0.11 s of CPU on this 2-core machine (user time of `pps flows read`
on a 1,000-packet capture: 0.27-0.31 s, 0.18-0.20 s with one thread; 2026-12). A value the user
set is kept. The library (`import ppsguard`) leaves the environment alone.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
