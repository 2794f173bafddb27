"""The `pps` command line: thin layers that parse arguments, call the library and render."""
